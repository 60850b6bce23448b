//! The fp32 CUDA kernels, run on the CPU: kernels/emulate/emulate_pass.cpp includes every
//! kernel file with a small CUDA shim (one std::thread per CUDA thread, barriers for
//! __syncthreads and warp shuffles) and checks the pass and the optimizer-step kernels
//! against plain double loops. It catches indexing, tiling, bounds and reduction-order
//! mistakes without a GPU (tensor-core paths and the host's cudarc calls are left to
//! tests/cuda_vs_cpu.rs on a GPU).
//!
//! Needs a C++20 compiler (`$CXX`, else `c++`): without one the test FAILS (it would
//! otherwise pass having checked nothing). scripts/test.sh checks for one up front.

use common::say;
use std::path::Path;
use std::process::Command;

mod common;

#[test]
fn kernels_match_double_loops_on_the_cpu_emulator() {
    let cxx = std::env::var("CXX").unwrap_or_else(|_| "c++".into());
    let found = Command::new(&cxx)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "no C++ compiler: `{cxx} --version` did not run; the kernel emulator needs a C++20 \
         compiler: install g++ (apt-get install g++) or set CXX to one"
    );
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = tempfile::tempdir().expect("temp dir");
    let exe = dir.path().join("emulate_pass");
    let out = Command::new(&cxx)
        .args([
            "-std=c++20",
            "-O2",
            "-pthread",
            "-Wno-unknown-pragmas",
            "-o",
        ])
        .arg(&exe)
        .arg(root.join("kernels/emulate/emulate_pass.cpp"))
        .output()
        .expect("run the C++ compiler");
    assert!(
        out.status.success(),
        "{cxx} failed on kernels/emulate/emulate_pass.cpp:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the emulator");
    let text = String::from_utf8_lossy(&run.stdout);
    say(&text);
    assert!(run.status.success(), "emulated kernels disagree:\n{text}");
}
