//! The `pairguard` command-line tool: argument groups in [`args`], one
//! module per command in [`commands`], launch files for schedulers in
//! [`cluster`], and the terminal's progress bar in [`progress`].

/// mimalloc, keeping the pages it frees (see `pairguard_alloc`).
#[global_allocator]
static ALLOCATOR: pairguard_alloc::MiMalloc = pairguard_alloc::MiMalloc;

mod args;
mod cluster;
mod commands;
mod progress;

use clap::Parser;

fn main() {
    pairguard_alloc::keep_freed_pages();
    let cli = commands::Cli::parse();
    if let Err(e) = commands::exec(cli.command) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
