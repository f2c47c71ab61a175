//! `erp`: the ERP command line (see `host_harness::cli`).

fn main() {
    // Rust ignores SIGPIPE, so printing into a closed pipe (`erp statements --json | head`)
    // would panic; the default action ends the process quietly instead. Every batch is committed
    // with its cursor, so ending at any point loses nothing.
    // SAFETY: called first in main, before any thread exists; SIG_DFL is a valid disposition.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(host_harness::cli::main());
}
