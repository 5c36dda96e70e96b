//! The runtime-agnostic core of [`nursery`](https://docs.rs/nursery):
//! structured concurrency for async Rust. Depend on `nursery`, which
//! re-exports everything here together with the `#[nursery]` and `spawn!`
//! macros; this crate is its implementation.
//!
//! It depends on `futures-task`, `atomic-waker`, `pin-project-lite` and std only, and runs on any
//! executor.
//!
//! # `unsafe`
//!
//! This is the one description of the crate's `unsafe` code; everything
//! else points here. Borrowing children need none: a nursery lives in the
//! frame of the `async fn` (or `scope!`) that drives it. The crate is
//! `#![deny(unsafe_code)]`, every `unsafe` block has a `SAFETY` comment and
//! every `unsafe fn` a `# Safety` section (both denied by lints), and
//! `unsafe` is allowed in four places only:
//!
//! 1. `node.rs`: a child's single allocation (header, future, output, join
//!    waker) reached through a type-erased pointer, with a hand-written
//!    waker. Its top states the five invariants every `SAFETY` comment
//!    there relies on.
//! 2. `run.rs`, two statements: the driver polls (and drops) a child lent by
//!    the registry without a reference count of its own — valid because
//!    nothing is removed from the registry between the lend and the end of
//!    the batch, and every path that removes a child ends the batch.
//! 3. `parallel.rs`, one pin projection: a parallel child's future, inline
//!    in its shared allocation and polled through a mutex, never moves.
//! 4. `tree.rs` (feature `task-tree`): the task tree reads a registered
//!    nursery through a pointer — valid because the driver takes the
//!    nursery pinned, and the nursery's first field takes it out of the
//!    list when it is dropped, whatever became of its driver.
//!
//! How it is checked: `tests/node.rs` aims a test at each invariant of
//! `node.rs`; `scripts/valgrind` runs the suites that reach these places
//! under memcheck; loom models the cross-thread handovers (`--cfg loom`);
//! CI (`.ci/run`) runs all three.
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(unsafe_code)] // allowed in the four places listed above
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]
#![deny(
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc,
    unsafe_op_in_unsafe_fn
)]

mod blocks;
mod cancel_scope;
mod deadline;
mod errors;
mod heap;
pub mod kind;
mod node;
mod nursery;
mod outcome;
mod parallel;
mod policy;
mod race;
mod registry;
mod run;
mod runtime;
mod shield;
mod start;
mod sync;
mod task;
mod timer;
mod token;
mod trace;
#[cfg(feature = "task-tree")]
mod tree;

#[doc(hidden)]
pub mod __private;

pub use crate::cancel_scope::{CancelScope, Run};
pub use crate::deadline::{
    TakesTimedOut, TimedOut, fail_after, fail_at, move_on_after, move_on_at,
};
pub use crate::errors::{Closed, Errors, Failure, Iter, TakesErrors};
pub use crate::kind::{Kind, Local, Sendable};
pub use crate::nursery::{Admit, Builder, CancelOn, Cancelled, Nursery, ParallelBuilder};
pub use crate::outcome::{HasOutput, Never, Outcome};
pub use crate::parallel::{ParallelTask, SpawnError, Spawner, SpawnerAlreadySet, set_spawner};
pub use crate::race::Race;
pub use crate::start::{Started, TaskStatus};
pub use crate::task::{Task, TaskResult, TryJoin};
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub use crate::timer::TokioTimer;
pub use crate::timer::{Sleep, Timer, TimerAlreadySet, set_timer};
pub use crate::token::{CancelToken, TokenCancelled};
#[cfg(feature = "task-tree")]
#[cfg_attr(docsrs, doc(cfg(feature = "task-tree")))]
pub use crate::tree::{ChildSnapshot, NurserySnapshot, TaskTree, task_tree};
