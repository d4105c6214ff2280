//! The `xconnect` binary: see `xconnect --help`.

fn main() {
    std::process::exit(xconnect::cli::main());
}
