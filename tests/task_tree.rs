//! Feature `task-tree`: `nursery::task_tree()` shows every running nursery
//! and its children, nested, with names, states and ages.
#![cfg(all(feature = "task-tree", feature = "tokio"))]

mod common;

use common::paused_runtime;

use std::time::Duration;

use nursery::{Errors, TaskStatus, nursery, spawn, start};

fn has(tree: &str, needle: &str) {
    assert!(tree.contains(needle), "missing {needle:?} in:\n{tree}");
}

#[nursery]
async fn worker() {
    spawn!(std::future::pending::<()>(), name = "inner-job");
    std::future::pending::<()>().await
}

async fn listener(status: TaskStatus<u16>, release: tokio::sync::oneshot::Receiver<()>) {
    release.await.ok();
    status.started(80);
    std::future::pending::<()>().await
}

#[nursery(n)]
async fn server(
    trees: tokio::sync::mpsc::UnboundedSender<String>,
) -> Result<(), Errors<nursery::SpawnError>> {
    spawn!(std::future::pending::<()>(), name = "heartbeat", background);
    spawn!(async move { n.cancelled().await }, name = "saver", shield);
    spawn!(worker());
    spawn!(std::future::pending::<()>(), name = "remote", parallel);
    let (release, wait) = tokio::sync::oneshot::channel();
    let t = trees.clone();
    spawn!(async move {
        tokio::time::sleep(Duration::from_secs(3)).await;
        t.send(nursery::task_tree()).unwrap(); // while `listener` waits for start
        release.send(()).unwrap();
    });
    let _port = start!(|status| listener(status, wait), name = "listener");
    tokio::time::sleep(Duration::from_secs(2)).await;
    trees.send(nursery::task_tree()).unwrap();
    n.cancel();
    Ok(())
}

/// One test, so that no other test's nursery shows in the process-wide tree.
#[test]
fn the_task_tree() {
    the_tree_shows_nurseries_children_states_and_ages();
    a_cancelling_nursery_says_why();
    the_task_tree_is_data_and_its_display_is_the_text();
    #[cfg(feature = "serde")]
    the_task_tree_serializes_to_json();
    // once every nursery has returned, nothing is left
    assert_eq!(nursery::task_tree(), "(no nursery is running)\n");
}

fn the_tree_shows_nurseries_children_states_and_ages() {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    paused_runtime().block_on(async { server(tx).await.unwrap() });
    let during_start = rx.try_recv().unwrap();
    let after = rx.try_recv().unwrap();
    has(&during_start, "nursery `server` (running, 3.0 s");
    has(
        &during_start,
        "child `listener` [waiting for start] (3.0 s)",
    );
    has(&after, "child `heartbeat` [background] (5.0 s)");
    has(&after, "child `saver` [shielded] (5.0 s)");
    has(&after, "child `remote` [parallel] (5.0 s)");
    has(&after, "child worker() (5.0 s)");
    // the nested nursery is under the child it runs in
    has(
        &after,
        "  child worker() (5.0 s)\n    nursery `worker` (running, 5.0 s, 1 children)\n      child `inner-job` (5.0 s)",
    );
    assert!(!after.contains("waiting for start"), "{after}");
}

fn a_cancelling_nursery_says_why() {
    #[nursery(n, grace = Duration::from_secs(10))]
    async fn shutting_down(out: &std::sync::Mutex<String>) {
        spawn!(
            async move {
                n.cancelled().await;
                tokio::time::sleep(Duration::from_secs(1)).await; // cleaning up
                *out.lock().unwrap() = nursery::task_tree();
            },
            name = "conn"
        );
        tokio::task::yield_now().await;
        n.cancel();
    }
    let out = std::sync::Mutex::new(String::new());
    paused_runtime().block_on(shutting_down(&out));
    let tree = out.into_inner().unwrap();
    has(
        &tree,
        "nursery `shutting_down` (cancelling, grace period (explicit cancel)",
    );
    has(&tree, "child `conn` [cancelling]");
}

#[nursery(n)]
async fn snapshot_of_two_levels() -> nursery::TaskTree {
    spawn!(std::future::pending::<()>(), name = "heartbeat", background);
    spawn!(worker(), name = "worker");
    tokio::task::yield_now().await; // the children start; `worker` opens its nursery
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let tree = nursery::TaskTree::capture();
    n.cancel(); // the worker would run forever
    tree
}

/// The task tree as data: every nursery with its state and age, every child
/// with its name, tags and age, nested where they run; `Display` is the
/// text `task_tree()` gives.
fn the_task_tree_is_data_and_its_display_is_the_text() {
    let tree = paused_runtime().block_on(snapshot_of_two_levels());
    let top = tree
        .nurseries
        .iter()
        .find(|n| n.name == Some("snapshot_of_two_levels"))
        .expect("the top nursery is a root");
    assert_eq!(top.state, "running");
    assert_eq!(top.age, Duration::from_millis(1500));
    let names: Vec<_> = top
        .children
        .iter()
        .map(|c| (c.name.as_str(), c.named))
        .collect();
    assert_eq!(names, [("heartbeat", true), ("worker", true)]);
    assert_eq!(top.children[0].tags, ["background"]);
    let worker = &top.children[1];
    assert_eq!(
        worker.nurseries.len(),
        1,
        "the worker's nursery runs inside it"
    );
    let inner = &worker.nurseries[0];
    assert_eq!(inner.name, Some("worker"));
    assert_eq!(inner.children[0].name, "inner-job");
    // The worker's nursery is not a root as well: the top one is the only one.
    assert_eq!(tree.nurseries.len(), 1);
    assert!(!tree.nurseries.iter().any(|n| n.id == inner.id));
    let text = tree.to_string();
    has(
        &text,
        "nursery `snapshot_of_two_levels` (running, 1.5 s, 2 children)",
    );
    has(
        &text,
        "  child `worker` (1.5 s)\n    nursery `worker` (running",
    );
}

#[cfg(feature = "serde")]
fn the_task_tree_serializes_to_json() {
    let tree = paused_runtime().block_on(snapshot_of_two_levels());
    let json = serde_json::to_value(&tree).unwrap();
    let top = json["nurseries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "snapshot_of_two_levels")
        .expect("the top nursery");
    assert_eq!(top["state"], "running");
    assert_eq!(top["children"][1]["name"], "worker");
    assert_eq!(
        top["children"][1]["nurseries"][0]["children"][0]["name"],
        "inner-job"
    );
    assert_eq!(top["children"][0]["tags"][0], "background");
}
