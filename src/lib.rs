//! nursery
#![forbid(unsafe_code)]
pub use nursery_core::*;
pub use nursery_macros::{nursery, spawn};
#[doc(hidden)]
pub use nursery_core::__private;
