//! [`Race`]: the first attempt to succeed wins and cancels the rest; if
//! every attempt fails, every failure is returned.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::sync::Mutex;

use crate::errors::Errors;
use crate::kind::Kind;
use crate::nursery::Nursery;
use crate::sync::lock;

/// A race between children (Java's `anySuccessfulOrThrow`, RFC 8305's
/// connection attempts): the first attempt to succeed gives the value and
/// cancels its nursery — the other attempts, and the body that starts them —
/// and when every attempt failed, [`Race::finish`] gives every failure, in
/// the order they happened, each under its attempt's name.
///
/// Attempts are children of a nursery of your own, so you choose when each
/// starts (at once, or staggered, as Happy Eyeballs does); a failed attempt
/// is kept by the race, never a failure of that nursery.
///
/// # Examples
///
/// ```
/// use nursery::{nursery, spawn, Errors, Race};
///
/// async fn lookup(server: &str) -> Result<u32, String> {
///     match server {
///         "primary" => Err("primary is down".to_owned()),
///         _ => Ok(42),
///     }
/// }
///
/// #[nursery(n)]
/// async fn ask_all(race: &Race<u32, String>) {
///     for server in ["primary", "backup"] {
///         spawn!(race.attempt(n, server, lookup(server)));
///     }
/// }
///
/// let race = Race::new();
/// futures::executor::block_on(ask_all(&race));
/// assert_eq!(race.finish().unwrap(), 42);
///
/// let race = Race::<u32, String>::new();
/// futures::executor::block_on(async {
///     #[nursery(n)]
///     async fn all_down(race: &Race<u32, String>) {
///         spawn!(race.attempt(n, "a", async { Err("a is down".to_owned()) }));
///         spawn!(race.attempt(n, "b", async { Err("b is down".to_owned()) }));
///     }
///     all_down(&race).await
/// });
/// let errors: Errors<String> = race.finish().unwrap_err();
/// assert_eq!(errors.into_vec(), ["a is down", "b is down"]);
/// ```
pub struct Race<T, E> {
    state: Mutex<State<T, E>>,
}

struct State<T, E> {
    winner: Option<T>,
    failures: Option<Errors<E>>,
}

impl<T, E> Default for Race<T, E> {
    fn default() -> Self {
        Race {
            state: Mutex::new(State {
                winner: None,
                failures: None,
            }),
        }
    }
}

impl<T, E> Race<T, E> {
    /// A race with no attempt yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// One attempt, to spawn as a child of `n`: if `fut` succeeds first, its
    /// value wins and `n` is cancelled (the other attempts, and whatever
    /// else runs in `n`, are cancelled with it); if it fails, its error is
    /// kept under `name` and the race goes on. A success after the winner's
    /// is dropped (it was a tie the winner took).
    pub async fn attempt<'scope, NE, K: Kind>(
        &self,
        n: &Nursery<'scope, NE, K>,
        name: impl Into<Cow<'static, str>>,
        fut: impl Future<Output = Result<T, E>>,
    ) {
        let name = name.into();
        let out = fut.await;
        let mut state = lock(&self.state);
        match out {
            Ok(value) if state.winner.is_none() => {
                state.winner = Some(value);
                drop(state);
                n.cancel();
            }
            Ok(_) => {}
            Err(error) => Errors::push(&mut state.failures, error, Some(name), n.name()),
        }
    }

    /// The result, once the nursery the attempts ran in has returned: the
    /// winner's value, or every failure.
    ///
    /// # Panics
    ///
    /// If no attempt ended (none was spawned, or each was cancelled before
    /// it ended): there is neither a value nor a failure to give.
    pub fn finish(self) -> Result<T, Errors<E>> {
        let state = self
            .state
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match (state.winner, state.failures) {
            (Some(value), _) => Ok(value),
            (None, Some(failures)) => Err(failures),
            (None, None) => panic!(
                "`Race::finish`: no attempt of the race ended, so there is neither a value nor \
                 a failure; spawn at least one `race.attempt(…)` and let the nursery return first"
            ),
        }
    }
}

impl<T, E> fmt::Debug for Race<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = lock(&self.state);
        f.debug_struct("Race")
            .field("won", &state.winner.is_some())
            .field("failures", &state.failures.as_ref().map_or(0, Errors::len))
            .finish()
    }
}
