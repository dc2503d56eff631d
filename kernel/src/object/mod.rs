//! The kernel's objects, one module each: its state and what it does to itself. Operations
//! that involve several objects or the scheduler are methods of [`crate::kernel::Kernel`] in
//! the modules named at the top of each object's file.

pub mod capability;
pub mod domain;
pub mod endpoint;
pub mod region;
