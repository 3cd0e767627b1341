//! Empty: the build script is what gives this crate build-dependencies,
//! whose features then reach the other build scripts and macros (see
//! Cargo.toml).

fn main() {}
