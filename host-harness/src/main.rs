//! `erp`: the ERP command line (see `host_harness::cli`).

fn main() {
    std::process::exit(host_harness::cli::main());
}
