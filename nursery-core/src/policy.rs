//! What a child's failure does: the nursery's policy, one small object
//! consulted on each failure (as Java's joiners are on each completion).
//!
//! | policy | a child's `Err` | a child's panic | kept |
//! | --- | --- | --- | --- |
//! | fail-fast (the default) | cancels the nursery | cancels it, resumes at the end | every error in `Errors` |
//! | `supervise` | cancels nobody | cancels nobody, not resumed | every failure in `Errors` |
//! | `supervise = handler` | handed to the handler | handed to the handler | nothing: constant memory |
//!
//! The body's own `Err` and panic, and the nursery's own deadline, act as
//! in a fail-fast nursery whatever the policy; a failure claimed by
//! [`Task::result`](crate::Task::result) goes to that future instead.

use std::borrow::Cow;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::errors::{Errors, Failure, Payload};
use crate::kind::Kind;
use crate::nursery::{Handler, Nursery, Policy};
use crate::outcome::Failed;
use crate::sync::lock;
use crate::trace::Reason;

impl<'scope, E, K: Kind> Nursery<'scope, E, K> {
    /// A child's failure (its `Err`, or a nested nursery's errors): routed
    /// by the policy. The nursery's own deadline (its `timeout` child)
    /// always cancels it.
    pub(crate) fn child_failed(&self, failed: Failed<E>, task: Option<Cow<'static, str>>) {
        let failure = match failed {
            Failed::One(error) => Failure::error_of(error, task, self.name()),
            Failed::Many(errors) => Failure::nested(errors, task),
        };
        let mut state = self.state();
        if state.timeout_armed && failure.name() == Some("timeout") {
            for part in failure.into_parts() {
                Errors::push_failure(&mut state.errors, part);
            }
            state.request_cancel(Reason::Deadline);
            return;
        }
        drop(state);
        self.route(failure);
    }

    /// A child's panic (of its poll, or of its `Drop`): in a fail-fast
    /// nursery, the nursery's panic; otherwise a failure like any other.
    pub(crate) fn child_panicked(&self, payload: Payload, task: Option<Cow<'static, str>>) {
        self.route(Failure::panic_of(payload, task, self.name()));
    }

    /// A failure, by the policy: in a fail-fast nursery an error is kept
    /// and cancels, a panic is the nursery's panic; under `supervise` it is
    /// delivered. Every child failure comes here (a claimed one given back
    /// unread too).
    pub(crate) fn route(&self, failure: Failure<E>) {
        for failure in failure.into_parts() {
            if self.state().policy != Policy::FailFast {
                self.deliver(failure);
                continue;
            }
            match failure.into_panic() {
                Ok(payload) => self.panicked(payload),
                Err(failure) => {
                    let mut state = self.state();
                    Errors::push_failure(&mut state.errors, failure);
                    state.request_cancel(Reason::Failure);
                }
            }
        }
    }

    /// Claimed failures whose handle gave them back unread: to the policy.
    pub(crate) fn take_returned(&self, shared: &crate::registry::Shared) {
        for node in shared.take_returned() {
            // SAFETY: the handle gave the node's stage back to the driver
            // (that is what returning it means), and a nursery's children
            // all fail with its `E`.
            #[allow(unsafe_code)]
            let failure = unsafe { node.take_returned::<E>() };
            if let Some(failure) = failure {
                self.route(failure);
            }
        }
    }

    /// A failure under `supervise`: kept, or handed to the handler with no
    /// lock held (it may spawn, cancel, read the task tree). A handler that
    /// panics is a panic of the nursery, as the body's is: it cancels the
    /// nursery and resumes in its caller.
    fn deliver(&self, failure: Failure<E>) {
        let mut state = self.state();
        if state.policy != Policy::Handler {
            Errors::push_failure(&mut state.errors, failure);
            return;
        }
        drop(state);
        let Some(mut handler) = lock(&self.handler).take() else {
            // Only a failure delivered from inside the handler itself: kept,
            // never lost.
            Errors::push_failure(&mut self.state().errors, failure);
            return;
        };
        let handled = catch_unwind(AssertUnwindSafe(|| handler(failure)));
        *lock(&self.handler) = Some(handler);
        if let Err(payload) = handled {
            self.panicked(payload);
        }
    }

    /// Makes this a supervising nursery (`#[nursery(supervise)]`): a
    /// child's failure, an `Err` or a panic, cancels nobody; the body and
    /// the other children go on, and every failure is returned in
    /// [`Errors`] when the nursery ends — run all, report all. A child's
    /// panic is one of them (a [`Failure`] carrying its payload), not
    /// resumed. The body's own `Err` still cancels the children, and its
    /// own panic resumes as always. Applies to failures from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn, Errors};
    ///
    /// #[nursery(n)]
    /// async fn check_all(hosts: &[&'static str]) -> Result<usize, Errors<String>> {
    ///     n.supervise();
    ///     let checks: Vec<_> = hosts
    ///         .iter()
    ///         .map(|&host| spawn!(async move {
    ///             if host.ends_with(".invalid") { Err(format!("{host}: no such host")) } else { Ok(()) }
    ///         }))
    ///         .collect();
    ///     let mut up = 0;
    ///     for check in checks {
    ///         up += usize::from(check.try_join().await.is_some());
    ///     }
    ///     Ok(up)
    /// }
    ///
    /// let errors = futures::executor::block_on(check_all(&["a.example", "b.invalid", "c.example"]))
    ///     .unwrap_err();
    /// assert_eq!(errors.into_vec(), ["b.invalid: no such host"]);
    /// ```
    pub fn supervise(&self) {
        self.state().policy = Policy::Supervise;
    }

    /// Makes this a supervising nursery whose failures go to `handler`
    /// (`#[nursery(supervise = handler)]`): each child failure, panics
    /// included, is handed to it as it happens and is then not kept, so a
    /// server runs forever in constant memory; one bad connection never
    /// takes it down. The handler runs on the nursery's task, between
    /// polls of its children, with no lock held: it may spawn, cancel or
    /// read the task tree. A handler that panics is a panic of the
    /// nursery. Applies to failures from now on.
    ///
    /// # Examples
    ///
    /// ```
    /// use nursery::{nursery, spawn, Errors, Failure};
    ///
    /// fn log(failure: Failure<std::io::Error>) {
    ///     eprintln!("{failure}"); // "child `conn 2` of nursery `serve` failed: reset"
    /// }
    ///
    /// #[nursery(supervise = log)]
    /// async fn serve() -> Result<(), Errors<std::io::Error>> {
    ///     for id in 0..3 {
    ///         spawn!(async move {
    ///             if id == 2 {
    ///                 return Err(std::io::Error::other("reset"));
    ///             }
    ///             Ok(())
    ///         }, name = format!("conn {id}"));
    ///     }
    ///     Ok(())
    /// }
    ///
    /// futures::executor::block_on(serve()).unwrap(); // the failure was handled
    /// ```
    pub fn supervise_with(&self, handler: impl FnMut(Failure<E>) + Send + 'scope) {
        let handler: Handler<'scope, E> = Box::new(handler);
        let mut state = self.state();
        if state.phase == crate::nursery::Phase::Closed {
            return; // nothing can fail any more; dropped here, with the scope alive
        }
        state.policy = Policy::Handler;
        drop(state);
        let replaced = lock(&self.handler).replace(handler);
        drop(replaced); // with no lock held
    }
}
