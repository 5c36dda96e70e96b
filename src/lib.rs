//! nursery
#![forbid(unsafe_code)]
#[doc(hidden)]
pub use nursery_core::__private;
pub use nursery_core::*;
pub use nursery_macros::{nursery, spawn};
