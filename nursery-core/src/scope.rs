//! The function form of a nursery: [`scope`] and [`scope_local`].

use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::ops::Deref;
use std::pin::Pin;

use crate::__private::run_errors;
use crate::errors::Errors;
use crate::kind::{Kind, Local, Sendable};
use crate::nursery::Nursery;

/// The nursery handle of [`scope`]: a [`Nursery`] (it derefs to one) that
/// also records `'env`, the lifetime of what the scope's closure borrows.
///
/// The function form needs this second lifetime for the same reason
/// [`std::thread::Scope`] has one: the closure is generic over `'scope`,
/// and `'env: 'scope` is what lets its body borrow the caller's locals.
/// `#[nursery]` needs no such thing; where a `&Nursery<'scope, E>` is
/// expected, pass `&n` (or `n`, which coerces).
pub struct Scope<'scope, 'env: 'scope, E, K: Kind = Sendable> {
    nursery: Nursery<'scope, E, K>,
    _env: PhantomData<&'env mut &'env ()>,
}

impl<'scope, E, K: Kind> Deref for Scope<'scope, '_, E, K> {
    type Target = Nursery<'scope, E, K>;

    fn deref(&self) -> &Nursery<'scope, E, K> {
        &self.nursery
    }
}

impl<E, K: Kind> fmt::Debug for Scope<'_, '_, E, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.nursery.fmt(f)
    }
}

/// The body of a [`scope`]: a boxed `Send` future.
pub type ScopeBody<'scope, T, E> =
    Pin<Box<dyn Future<Output = Result<T, Errors<E>>> + Send + 'scope>>;

/// The body of a [`scope_local`]: a boxed future.
pub type LocalScopeBody<'scope, T, E> =
    Pin<Box<dyn Future<Output = Result<T, Errors<E>>> + 'scope>>;

/// Runs a nursery without the attribute: `f` gets the nursery handle and
/// returns the body as a boxed future; the result is the body's value, or
/// every failure.
///
/// This is `#[nursery]` for a `-> Result<T, Errors<E>>` body, written as a
/// function. The body is boxed because stable Rust cannot yet bound the
/// future of a higher-ranked async closure by `Send`
/// (rust-lang/rust#126350); `#[nursery]` needs no box. Children may borrow
/// what outlives the call, as with [`std::thread::scope`].
///
/// # Examples
///
/// ```
/// let names = vec!["a".to_string(), "bb".to_string()];
/// let names = &names; // children borrow what outlives the scope
/// let total = futures::executor::block_on(nursery::scope(|n| {
///     Box::pin(async move {
///         let lens: Vec<_> = names.iter().map(|s| n.spawn(async move { Ok(s.len()) })).collect();
///         let mut total = 0;
///         for len in lens {
///             total += len.await;
///         }
///         Ok::<_, nursery::Errors<std::io::Error>>(total)
///     })
/// }));
/// assert_eq!(total.unwrap(), 3);
/// ```
///
/// # Panics
///
/// Resumes the first panic of the body or a child, once every child is
/// gone. Panics if the nursery is cancelled (by [`Nursery::cancel`]) before
/// a body of a type other than `()` or `Option<_>` returned.
pub async fn scope<'env, T, E, F>(f: F) -> Result<T, Errors<E>>
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env, E>) -> ScopeBody<'scope, T, E>,
{
    let scope = Scope {
        nursery: Nursery::new(),
        _env: PhantomData,
    };
    let body = f(&scope);
    run_errors(&scope.nursery, body, || None).await
}

/// [`scope`] for children that need not be `Send`: its future is `!Send`.
///
/// # Examples
///
/// ```
/// use std::rc::Rc;
///
/// let shared = Rc::new(5);
/// let out = futures::executor::block_on(nursery::scope_local(|n| {
///     Box::pin(async move {
///         let s = shared.clone();
///         let t = n.spawn(async move { Ok(*s + 1) });
///         Ok::<_, nursery::Errors<()>>(t.await)
///     })
/// }));
/// assert_eq!(out.unwrap(), 6);
/// ```
pub async fn scope_local<'env, T, E, F>(f: F) -> Result<T, Errors<E>>
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env, E, Local>) -> LocalScopeBody<'scope, T, E>,
{
    let scope = Scope {
        nursery: Nursery::new(),
        _env: PhantomData,
    };
    let body = f(&scope);
    run_errors(&scope.nursery, body, || None).await
}
