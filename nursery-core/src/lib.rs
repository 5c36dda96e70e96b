//! The runtime-agnostic core of [`nursery`](https://docs.rs/nursery):
//! structured concurrency for async Rust. Depend on `nursery`, which
//! re-exports everything here together with the `#[nursery]` and `spawn!`
//! macros; this crate is its implementation.
//!
//! It depends on `futures-core`/`futures-util` and std only, and runs on any
//! executor. Its `unsafe` code is `node.rs` — a child's single
//! allocation, with the invariants its `SAFETY` comments rely on stated at
//! its top — one pin projection in `parallel.rs`, and (feature
//! `task-tree`) the read of a registered nursery in `tree.rs`; borrowing
//! children need none.
#![deny(unsafe_code)] // allowed in `node.rs`, one line of `parallel.rs` and of `run.rs`, `tree.rs`
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

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
pub use crate::deadline::{TimedOut, fail_after, fail_at, move_on_after, move_on_at};
pub use crate::errors::{Closed, Errors, Iter};
pub use crate::kind::{Local, Sendable};
pub use crate::nursery::{Builder, Cancelled, Nursery, ParallelBuilder};
pub use crate::outcome::{HasOutput, Never, Outcome};
pub use crate::parallel::{ParallelTask, SpawnError, Spawner, SpawnerAlreadySet, set_spawner};
pub use crate::start::{Started, TaskStatus};
pub use crate::task::{Task, TryJoin};
#[cfg(feature = "tokio")]
pub use crate::timer::TokioTimer;
pub use crate::timer::{Sleep, Timer, TimerAlreadySet, set_timer};
pub use crate::token::{CancelToken, TokenCancelled};
#[cfg(feature = "task-tree")]
pub use crate::tree::task_tree;
