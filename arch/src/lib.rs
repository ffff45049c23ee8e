//! x86_64 specifics for capOS.
#![no_std]
