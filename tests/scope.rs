//! The function form: `nursery::scope!(|n| async { … })`.

mod common;

use common::*;
use nursery::{Errors, Nursery};

fn spawn_helper<'scope>(n: &Nursery<'scope, String>, done: &'scope Counter) {
    n.spawn(async move {
        yield_now().await;
        done.add();
    });
}

on_every_runtime! {
    async fn children_borrow_the_enclosing_fns_locals() {
        let words = vec!["ab".to_string(), "cde".to_string()];
        let words = &words;
        let total = nursery::scope!(|n| async {
            let hs: Vec<_> = words.iter().map(|w| n.spawn(async move { Ok(w.len()) })).collect();
            let mut total = 0;
            for h in hs {
                total += h.await;
            }
            Ok::<_, Errors<String>>(total)
        })
        .await
        .unwrap();
        assert_eq!(total, 5);
    }

    async fn the_scope_handle_is_a_nursery() {
        let done = Counter::new();
        let done = &done;
        nursery::scope!(|n| async {
            spawn_helper(n, done);
            Ok::<_, Errors<String>>(())
        })
        .await
        .unwrap();
        assert_eq!(done.get(), 1);
    }

    async fn failures_are_aggregated() {
        let guards = Tracker::new();
        let guards = &guards;
        let errors = nursery::scope!(|n| async {
            let g = guards.guard();
            n.spawn(async move {
                let _g = g;
                std::future::pending::<()>().await;
            });
            n.builder().name("a").spawn(async { Err::<(), _>("a failed".to_string()) });
            Ok::<_, Errors<String>>(())
        })
        .await
        .unwrap_err();
        assert_eq!(errors.to_string(), "child `a` failed: a failed");
        assert!(guards.all_dropped());
    }

    async fn cancel_returns_normally() {
        nursery::scope!(|n| async {
            n.spawn(std::future::pending::<()>());
            n.cancel();
            yield_now().await;
            Ok::<_, Errors<String>>(())
        })
        .await
        .unwrap();
    }
}

#[test]
fn scope_local_takes_not_send_children() {
    let rc = std::rc::Rc::new(3);
    let out = futures::executor::block_on(nursery::scope!(local, |n| async {
        let rc2 = rc.clone();
        let t = n.spawn(async move { Ok(*rc2 * 2) });
        Ok::<_, Errors<()>>(t.await)
    }));
    assert_eq!(out.unwrap(), 6);
}

#[test]
fn spawn_works_inside_scope() {
    let xs = [1u32, 2, 3];
    let out = futures::executor::block_on(nursery::scope!(|_n| async {
        let hs: Vec<_> = xs
            .iter()
            .map(|x| nursery::spawn!(async move { x * 10 }))
            .collect();
        let mut v = Vec::new();
        for h in hs {
            v.push(h.await);
        }
        Ok::<_, Errors<()>>(v)
    }));
    assert_eq!(out.unwrap(), [10, 20, 30]);
}

#[nursery::nursery]
async fn scope_inside_nursery(log: &std::sync::Mutex<Vec<&'static str>>) {
    nursery::spawn!(async move { log.lock().unwrap().push("outer child") });
    nursery::scope!(|_inner| async {
        nursery::spawn!(async move { log.lock().unwrap().push("inner child") });
        Ok::<_, Errors<()>>(())
    })
    .await
    .unwrap();
    // the inner child belonged to the inner scope: it is done by now
    log.lock().unwrap().push("after inner scope");
}

#[test]
fn spawn_belongs_to_the_nearest_nursery() {
    let log = std::sync::Mutex::new(Vec::new());
    futures::executor::block_on(scope_inside_nursery(&log));
    let log = log.into_inner().unwrap();
    let inner = log.iter().position(|s| *s == "inner child").unwrap();
    let after = log.iter().position(|s| *s == "after inner scope").unwrap();
    assert!(inner < after, "{log:?}");
    assert!(log.contains(&"outer child"));
}
