//! Shared-memory submission/completion ring ABI, identical bytes in kernel and userspace
#![cfg_attr(not(test), no_std)]
