//! Physical memory and address spaces: the frame allocator, translation tables, user
//! regions and checked access to user memory.

pub mod address_space;
pub mod frames;
pub mod object;
pub mod page_table;
pub mod user;
