//! `#[nursery]` on every kind of `async fn`, every return shape, and
//! `spawn!` in every position inside a body.

mod common;

use common::*;
use nursery::{Errors, nursery, spawn};
use std::fmt::Display;
use std::io;

// ---- receivers -------------------------------------------------------------

struct Conn {
    name: String,
    sent: std::sync::Mutex<Vec<String>>,
}

impl Conn {
    #[nursery]
    async fn by_ref(&self) -> usize {
        let t = spawn!(async move { self.name.len() });
        t.await
    }

    #[nursery]
    async fn by_mut(&mut self) -> usize {
        self.name.push('!');
        let name = &self.name;
        spawn!(async move { name.len() }).await
    }

    #[nursery]
    async fn by_value(self) -> String {
        let name = &self.name;
        spawn!(async move { format!("{name}?") }).await
    }

    #[nursery(n)]
    async fn with_handle(&self) -> Result<(), Errors<io::Error>> {
        for i in 0..3 {
            n.spawn(async move {
                self.sent.lock().unwrap().push(format!("{i}"));
                Ok(())
            });
        }
        Ok(())
    }
}

// ---- generics, lifetimes, impl Trait ----------------------------------------

#[nursery]
async fn generic<T, U>(items: &[T], extra: U) -> Vec<String>
where
    T: Display + Sync,
    U: Display + Send + Sync,
{
    let extra = &extra;
    let handles: Vec<_> = items
        .iter()
        .map(|t| spawn!(async move { format!("{t}{extra}") }))
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await);
    }
    out
}

#[nursery]
async fn impl_trait_arg(x: impl Display + Send + Sync) -> String {
    let x = &x;
    spawn!(async move { x.to_string() }).await
}

#[nursery]
async fn explicit_lifetimes<'a, 'b>(a: &'a str, b: &'b str) -> usize {
    let la = spawn!(async move { a.len() });
    let lb = spawn!(async move { b.len() });
    la.await + lb.await
}

trait Service {
    async fn call(&self) -> u32;
}

struct Svc;

impl Service for Svc {
    #[nursery]
    async fn call(&self) -> u32 {
        spawn!(async { 40u32 }).await + 2
    }
}

// ---- return shapes ----------------------------------------------------------

#[nursery]
async fn returns_unit(done: &Counter) {
    spawn!(async move { done.add() });
}

#[nursery]
async fn returns_errors(fail: bool) -> Result<u8, Errors<io::Error>> {
    spawn!(async move {
        if fail {
            Err(io::Error::other("boom"))
        } else {
            Ok(())
        }
    });
    Ok(1)
}

#[nursery]
async fn returns_anyhow(fail: bool) -> anyhow::Result<u8> {
    spawn!(async move {
        if fail {
            anyhow::bail!("boom");
        }
        Ok(())
    });
    let parsed: u8 = "1".parse()?; // `?` on any error converts, as in any anyhow fn
    Ok(parsed)
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[nursery]
async fn returns_box_dyn(fail: bool) -> Result<u8, BoxError> {
    spawn!(async move {
        if fail {
            Err(BoxError::from("boom"))
        } else {
            Ok(())
        }
    });
    Ok(1)
}

#[derive(Debug)]
enum AppError {
    Parse(std::num::ParseIntError),
    Nursery(Errors<AppError>),
}

impl From<Errors<AppError>> for AppError {
    fn from(e: Errors<AppError>) -> Self {
        AppError::Nursery(e)
    }
}

impl From<std::num::ParseIntError> for AppError {
    fn from(e: std::num::ParseIntError) -> Self {
        AppError::Parse(e)
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AppError::Parse(e) => write!(f, "parse: {e}"),
            AppError::Nursery(e) => write!(f, "nursery: {e}"),
        }
    }
}

#[nursery]
async fn returns_user_enum(input: &str) -> Result<u32, AppError> {
    let t = spawn!(async move {
        let v: u32 = input.parse()?;
        Ok(v)
    });
    Ok(t.await)
}

// ---- spawn! positions -------------------------------------------------------

#[nursery]
async fn positions(done: &Counter) -> Result<(), Errors<io::Error>> {
    // statement
    spawn!(async move { done.add() });
    // expression, in a let
    let a = spawn!(async { 1 });
    // in a closure, in an iterator
    let hs: Vec<_> = (0..3).map(|i| spawn!(async move { i })).collect();
    // in a loop
    for _ in 0..2 {
        spawn!(async move { done.add() });
    }
    // inside a nested async block awaited by the body
    async {
        spawn!(async move { done.add() });
    }
    .await;
    // inside a child's own async block (a child spawning a sibling)
    spawn!(async move {
        spawn!(async move { done.add() });
    });
    // inside another macro
    let v = vec![spawn!(async { 10 }), spawn!(async { 20 })];
    // with the full path
    nursery::spawn!(async move { done.add() });
    // inside tokio::select!
    tokio::select! {
        x = spawn!(async { 5 }) => assert_eq!(x, 5),
    }
    let mut total = a.await;
    for h in hs {
        total += h.await;
    }
    for h in v {
        total += h.await;
    }
    assert_eq!(total, 1 + 3 + 30);
    Ok(())
}

// ---- nesting ----------------------------------------------------------------

#[nursery]
async fn inner_nursery(log: &std::sync::Mutex<Vec<&'static str>>) {
    spawn!(async move {
        yield_times(3).await;
        log.lock().unwrap().push("inner child");
    });
}

#[nursery]
async fn outer_nursery(log: &std::sync::Mutex<Vec<&'static str>>) {
    spawn!(async move {
        inner_nursery(log).await;
        log.lock().unwrap().push("inner nursery returned");
    });
    #[nursery]
    async fn nested_item() -> u8 {
        spawn!(async { 4u8 }).await
    }
    assert_eq!(nested_item().await, 4);
}

on_every_runtime! {
    async fn methods_with_every_receiver() {
        let conn = Conn { name: "abc".into(), sent: Default::default() };
        assert_eq!(conn.by_ref().await, 3);
        conn.with_handle().await.unwrap();
        assert_eq!(conn.sent.lock().unwrap().len(), 3);
        let mut conn = conn;
        assert_eq!(conn.by_mut().await, 4);
        assert_eq!(conn.by_value().await, "abc!?");
        assert_eq!(Svc.call().await, 42);
    }

    async fn generics_lifetimes_and_impl_trait() {
        assert_eq!(generic(&[1, 2], "x").await, ["1x", "2x"]);
        assert_eq!(impl_trait_arg(5).await, "5");
        assert_eq!(explicit_lifetimes("ab", "cde").await, 5);
    }

    async fn every_return_shape() {
        let done = Counter::new();
        returns_unit(&done).await;
        assert_eq!(done.get(), 1);

        assert_eq!(returns_errors(false).await.unwrap(), 1);
        assert_eq!(returns_errors(true).await.unwrap_err().to_string(), "boom");

        assert_eq!(returns_anyhow(false).await.unwrap(), 1);
        let e = returns_anyhow(true).await.unwrap_err();
        assert_eq!(e.to_string(), "boom");
        assert_eq!(e.downcast_ref::<Errors<anyhow::Error>>().unwrap().len(), 1);

        assert_eq!(returns_box_dyn(false).await.unwrap(), 1);
        assert_eq!(returns_box_dyn(true).await.unwrap_err().to_string(), "boom");

        assert_eq!(returns_user_enum("7").await.unwrap(), 7);
        match returns_user_enum("x").await.unwrap_err() {
            AppError::Nursery(errors) => assert!(matches!(errors.first(), AppError::Parse(_))),
            other => panic!("unexpected {other}"),
        }
    }

    async fn spawn_works_in_every_position() {
        let done = Counter::new();
        positions(&done).await.unwrap();
        assert_eq!(done.get(), 6);
    }

    async fn nested_nurseries_each_own_their_scope() {
        let log = std::sync::Mutex::new(Vec::new());
        outer_nursery(&log).await;
        assert_eq!(*log.lock().unwrap(), ["inner child", "inner nursery returned"]);
    }
}

// ---- stacking with tokio's attributes -----------------------------------------

#[nursery]
#[tokio::test]
async fn stacks_above_tokio_test() {
    let t = spawn!(async { 1 });
    assert_eq!(t.await, 1);
}

#[nursery]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stacks_above_multi_thread_tokio_test() -> Result<(), Errors<io::Error>> {
    let t = spawn!(async {
        tokio::task::yield_now().await;
        Ok(())
    });
    t.await;
    Ok(())
}

mod with_tokio_main {
    use nursery::{nursery, spawn};

    #[nursery]
    #[tokio::main(flavor = "current_thread")]
    pub async fn main() -> u32 {
        spawn!(async { 3u32 }).await
    }

    #[test]
    fn stacks_above_tokio_main() {
        assert_eq!(main(), 3);
    }
}

// ---- children that are loops ------------------------------------------------

#[nursery]
async fn loop_children(ticks: &Counter, stop_after: usize) -> Result<(), Errors<String>> {
    // never returns: a heartbeat
    spawn!(
        async move {
            loop {
                ticks.add();
                yield_now().await;
            }
        },
        background
    );
    // left only through `?`
    spawn!(async move {
        loop {
            yield_now().await;
            if ticks.get() >= stop_after {
                Err(format!("stopped after {stop_after}"))?;
            }
        }
    });
    Ok(())
}

#[test]
fn children_that_loop_forever_or_fail_out_of_a_loop() {
    let ticks = Counter::new();
    let errors = futures::executor::block_on(loop_children(&ticks, 5)).unwrap_err();
    assert_eq!(errors.into_vec(), ["stopped after 5"]);
}
