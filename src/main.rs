//! The `xconnect` binary: see `xconnect --help`.

fn main() {
    // Die quietly on a closed pipe (`xconnect check … | head`), as command
    // line tools do, instead of panicking in `println!`.
    // SAFETY: setting the SIGPIPE disposition to its default before any
    // other thread exists; no handler code runs.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    std::process::exit(xconnect::cli::main());
}
