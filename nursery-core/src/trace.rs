//! Feature `tracing`: a span for every nursery and every child, and events
//! for failures, panics, cancellations (with their reason) and the errors a
//! nursery returns. Without the feature, everything here is a no-op of zero
//! size.
//!
//! * Span `nursery` (INFO): `name` (its fn, for `#[nursery]`), `id`. Its
//!   parent is the span current when it was first polled: the span of the
//!   child it runs in, for a nested nursery.
//! * Span `child` (INFO): `name` (from `name = "…"`, else the spawned
//!   expression), `id`, `nursery` (the nursery's id), `parallel`. Entered on
//!   every poll of the child, and while it is dropped.
//! * Events: `child failed` (WARN), `child panicked` (ERROR, with the panic
//!   message), `nursery cancelled` (INFO, `reason`), `child cancelled`
//!   (DEBUG, `reason`, inside the child's span), `nursery failed` (WARN,
//!   `failures`: how many errors it returns), `nursery dropped with failures
//!   it could not return` (WARN, `failures`: a nested nursery cancelled from
//!   outside had collected them; nowhere typed is left to put them).

use std::fmt;

use crate::registry::Options;

/// Why a nursery, or one of its children, was cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// A child or the body failed.
    Failure,
    /// A child or the body panicked.
    Panic,
    /// `Nursery::cancel`.
    Explicit,
    /// `CancelToken::cancel`.
    Token,
    /// The `#[nursery(timeout)]` deadline.
    Deadline,
    /// The whole nursery future was dropped by its caller.
    Dropped,
    /// A background child: the body and every other child had finished.
    Background,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Failure => "sibling failure",
            Reason::Panic => "sibling panic",
            Reason::Explicit => "explicit cancel",
            Reason::Token => "cancel token",
            Reason::Deadline => "deadline",
            Reason::Dropped => "the nursery future was dropped",
            Reason::Background => "background: the rest finished",
        })
    }
}

/// The spawned expression as a child's name, for traces and the task tree:
/// on one line, at most 60 characters (59 and `…` when cut).
#[cfg(any(feature = "tracing", feature = "task-tree"))]
pub(crate) struct OneLine<'a>(pub(crate) &'a str);

#[cfg(any(feature = "tracing", feature = "task-tree"))]
impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use fmt::Write as _;
        const MAX: usize = 60;
        let words = || self.0.split_whitespace();
        let total = words()
            .map(|w| w.chars().count() + 1)
            .sum::<usize>()
            .saturating_sub(1);
        let keep = if total <= MAX { total } else { MAX - 1 };
        let mut written = 0;
        for (i, word) in words().enumerate() {
            for c in (i > 0).then_some(' ').into_iter().chain(word.chars()) {
                if written == keep {
                    return f.write_char('…');
                }
                f.write_char(c)?;
                written += 1;
            }
        }
        Ok(())
    }
}

#[cfg(feature = "tracing")]
mod imp {
    use super::*;
    use std::borrow::Cow;
    use std::future::Future;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::task::{Context, Poll};

    static IDS: AtomicU64 = AtomicU64::new(1);

    fn next_id() -> u64 {
        IDS.fetch_add(1, Ordering::Relaxed)
    }

    /// A nursery's span, made at its first use. Kept in the nursery beside
    /// its state, not in it: events and spans are made with no lock of the
    /// nursery held, so a subscriber may call back into it.
    pub(crate) struct NurseryTrace {
        name: Option<&'static str>,
        span: std::sync::OnceLock<(tracing::Span, u64)>,
    }

    impl NurseryTrace {
        pub(crate) fn new(name: Option<&'static str>) -> Self {
            NurseryTrace {
                name,
                span: std::sync::OnceLock::new(),
            }
        }

        /// The span, made on first use (its parent is the current span).
        /// Made outside the cell, then set: a subscriber that spawns into
        /// the nursery from its `new_span` makes a span of its own, and the
        /// first one set wins (never a re-entrant `get_or_init`).
        pub(crate) fn span(&self) -> &tracing::Span {
            if let Some((span, _)) = self.span.get() {
                return span;
            }
            let id = next_id();
            let name = self.name.unwrap_or("scope");
            let span = tracing::info_span!("nursery", name, id);
            let _ = self.span.set((span, id));
            &self.span.get().expect("set above").0
        }

        fn id(&self) -> u64 {
            self.span.get().map_or(0, |(_, id)| *id)
        }

        pub(crate) fn cancelled(&self, reason: Reason) {
            let span = self.span();
            tracing::info!(parent: span, %reason, "nursery cancelled");
        }

        pub(crate) fn failed(&self, failures: usize) {
            let span = self.span();
            tracing::warn!(parent: span, failures, "nursery failed");
        }

        /// Dropped from outside with failures it never got to return.
        pub(crate) fn dropped_with_failures(&self, failures: usize) {
            let span = self.span();
            tracing::warn!(
                parent: span,
                failures,
                "nursery dropped with failures it could not return"
            );
        }

        pub(crate) fn body_panicked(&self, payload: &(dyn std::any::Any + Send)) {
            let span = self.span();
            tracing::error!(parent: span, panic = panic_message(payload), "body panicked");
        }

        /// Wraps a child in its span (the one `child_span` made for it, for
        /// a parallel child's stand-in).
        pub(crate) fn child<F: Future, E>(&self, fut: F, options: &mut Options) -> Traced<F, E> {
            let span = match options.span.take() {
                Some(span) => span,
                None => self.child_span(
                    options.name.as_ref(),
                    options.label.copied(),
                    options.parallel,
                ),
            };
            Traced {
                span,
                fut,
                done: false,
                _error: std::marker::PhantomData,
            }
        }

        /// A parallel child's span: its runtime task runs in it, and so does
        /// its stand-in in the nursery (given `options`).
        pub(crate) fn parallel<F>(
            &self,
            fut: F,
            options: &mut Options,
        ) -> tracing::instrument::Instrumented<F> {
            let span = self.child_span(options.name.as_ref(), options.label.copied(), true);
            options.span = Some(span.clone());
            tracing::Instrument::instrument(fut, span)
        }

        fn child_span(
            &self,
            name: Option<&Cow<'static, str>>,
            label: Option<&'static str>,
            parallel: bool,
        ) -> tracing::Span {
            let parent = self.span();
            let nursery_id = self.id();
            // Formatted only if a subscriber wants the span: no allocation
            // otherwise.
            let label = Label { name, label };
            tracing::info_span!(
                parent: parent,
                "child",
                name = %label,
                id = next_id(),
                nursery = nursery_id,
                parallel
            )
        }
    }

    fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
        payload
            .downcast_ref::<&str>()
            .copied()
            .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
            .unwrap_or("(a payload that is not a string)")
    }

    /// A child's name: its own, else the spawned expression on one line
    /// and at most 60 characters.
    struct Label<'a> {
        name: Option<&'a Cow<'static, str>>,
        label: Option<&'static str>,
    }

    impl fmt::Display for Label<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            match (self.name, self.label) {
                (Some(name), _) => f.write_str(name),
                (None, Some(label)) => OneLine(label).fmt(f),
                (None, None) => f.write_str("child"),
            }
        }
    }

    pin_project_lite::pin_project! {
        /// A child in its span; reports its cancellation when dropped unfinished.
        pub(crate) struct Traced<F, E> {
            span: tracing::Span,
            #[pin]
            fut: F,
            done: bool,
            _error: std::marker::PhantomData<fn() -> E>,
        }

        impl<F, E> PinnedDrop for Traced<F, E> {
            fn drop(this: Pin<&mut Self>) {
                let this = this.project();
                if !*this.done {
                    let reason = super::current_reason();
                    let _entered = this.span.enter();
                    match reason {
                        Some(reason) => tracing::debug!(%reason, "child cancelled"),
                        None => tracing::debug!("child cancelled"),
                    }
                }
            }
        }
    }

    impl<F: Future, E> Future for Traced<F, E>
    where
        F::Output: crate::Outcome<E>,
    {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.project();
            let _entered = this.span.enter();
            let fut = this.fut;
            let out = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fut.poll(cx)))
            {
                Ok(out) => out,
                Err(payload) => {
                    *this.done = true;
                    tracing::error!(panic = panic_message(&*payload), "child panicked");
                    std::panic::resume_unwind(payload)
                }
            };
            if let Poll::Ready(out) = &out {
                *this.done = true;
                if crate::Outcome::<E>::is_failure(out) {
                    tracing::warn!("child failed");
                }
            }
            out
        }
    }
}

#[cfg(not(feature = "tracing"))]
mod imp {
    use super::*;
    use std::future::Future;

    pub(crate) struct NurseryTrace;

    impl NurseryTrace {
        #[inline]
        pub(crate) fn new(_: Option<&'static str>) -> Self {
            NurseryTrace
        }
        #[inline]
        pub(crate) fn cancelled(&self, _: Reason) {}
        #[inline]
        pub(crate) fn failed(&self, _: usize) {}
        #[inline]
        pub(crate) fn dropped_with_failures(&self, _: usize) {}
        #[inline]
        pub(crate) fn body_panicked(&self, _: &(dyn std::any::Any + Send)) {}
        #[inline]
        #[allow(clippy::extra_unused_type_parameters)] // used with the feature
        pub(crate) fn child<F: Future, E>(&self, fut: F, _: &mut Options) -> F {
            fut
        }
        #[inline]
        pub(crate) fn parallel<F>(&self, fut: F, _: &mut Options) -> F {
            fut
        }
    }
}

pub(crate) use imp::*;

thread_local! {
    /// Why the children being dropped on this thread are dropped.
    static REASON: std::cell::Cell<Option<Reason>> = const { std::cell::Cell::new(None) };
}

/// While it lives, children dropped on this thread are dropped for `reason`.
pub(crate) struct ReasonGuard(Option<Reason>);

impl ReasonGuard {
    pub(crate) fn set(reason: Option<Reason>) -> Self {
        ReasonGuard(REASON.with(|r| r.replace(reason)))
    }
}

impl Drop for ReasonGuard {
    fn drop(&mut self) {
        REASON.with(|r| r.set(self.0));
    }
}

#[cfg(feature = "tracing")]
fn current_reason() -> Option<Reason> {
    REASON.with(std::cell::Cell::get)
}

#[cfg(all(test, any(feature = "tracing", feature = "task-tree")))]
mod tests {
    use super::OneLine;

    #[test]
    fn a_label_is_one_line_of_at_most_sixty_characters() {
        assert_eq!(
            OneLine("async {\n    work(  1 )\n}").to_string(),
            "async { work( 1 ) }"
        );
        let sixty = "x".repeat(60);
        assert_eq!(OneLine(&sixty).to_string(), sixty);
        let cut = OneLine(&"y".repeat(61)).to_string();
        assert_eq!(cut, format!("{}…", "y".repeat(59)));
        assert_eq!(
            OneLine(&format!("{} {}", "a".repeat(58), "bcd")).to_string(),
            format!("{} …", "a".repeat(58))
        );
    }
}
