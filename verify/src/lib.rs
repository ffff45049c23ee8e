//! Shared helpers for the capOS verification suites (the suites themselves live in `tests/`).
