//! Capability schema, table, transfer transactions, resource ledger and manifest validation
#![cfg_attr(not(test), no_std)]
