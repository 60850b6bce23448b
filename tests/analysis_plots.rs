//! The pictures and `index.html` of `analysis::report` on real run directories: a short
//! full-table training run (every picture, with the γ* line), a split run of two models
//! (test curves, overlays) and the exact construction (one checkpoint: the pictures over
//! training are skipped with a reason). Checks each PNG's signature, IHDR size and IEND,
//! each SVG's root element and size, and that index.html embeds or explains every
//! picture.

use clockwork::analysis::pipeline::{self, Options};
use clockwork::analysis::{construct, plot, report, tables};
use clockwork::engine::Backend;
use clockwork::kinds::{Device, Precision};
use std::path::{Path, PathBuf};
use std::time::Instant;

mod common;

/// The f64 CPU backend the analysis evaluates margins with.
fn cpu() -> Box<dyn Backend<f64>> {
    clockwork::engine::open::<f64>(Device::Cpu, Precision::Fp32, 0).unwrap()
}

/// Trains a small run (p = 23, width 176) with the `train` binary into `out`, saving a
/// checkpoint and a spectra record every `steps / 3` and `steps / 30` steps.
fn train(out: &Path, steps: u64, extra: &[&str]) {
    let steps_arg = steps.to_string();
    let ckpt = format!("train.checkpoint_every={}", steps / 3);
    let every = format!("train.eval_every={}", steps / 30);
    let spectra = format!("train.spectra_every={}", steps / 30);
    let mut args = vec![
        "--p",
        "23",
        "--width",
        "176",
        "--steps",
        &steps_arg,
        "--set",
        &ckpt,
        "--set",
        &every,
        "--set",
        &spectra,
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    common::assert_success(&common::train(&args));
}

fn be32(b: &[u8]) -> u32 {
    u32::from_be_bytes([b[0], b[1], b[2], b[3]])
}

/// Width and height of a PNG, after checking its signature, that IHDR comes first and
/// that the file ends with IEND.
fn png_size(path: &Path) -> (u32, u32) {
    let b = std::fs::read(path).unwrap();
    assert!(b.len() > 57, "{}: {} bytes", path.display(), b.len());
    assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{}", path.display());
    assert_eq!(be32(&b[8..12]), 13, "IHDR length");
    assert_eq!(&b[12..16], b"IHDR");
    assert_eq!(b[24], 8, "bit depth");
    assert_eq!(&b[b.len() - 8..b.len() - 4], b"IEND", "{}", path.display());
    (be32(&b[16..20]), be32(&b[20..24]))
}

/// Writes the report of the run at `run` into `run/report`; returns the pictures drawn
/// and skipped (by name) after checking every file.
fn check_report(run: &Path) -> (Vec<&'static str>, Vec<&'static str>) {
    let analysis = pipeline::analyze(cpu().as_ref(), run, &Options::default()).unwrap();
    let out = run.join("report");
    tables::write_tables(&analysis, &out).unwrap();
    let t = Instant::now();
    let written = report::write_report(&analysis, &out).unwrap();
    eprintln!("{}: report in {:.2?}", run.display(), t.elapsed());
    let html = std::fs::read_to_string(out.join("index.html")).unwrap();
    assert!(written.contains(&out.join("index.html")));
    assert!(!html.contains("http://") && !html.contains("https://"));
    assert!(html.contains("summary.json"), "tables linked");
    let (mut drawn, mut skipped) = (Vec::new(), Vec::new());
    for name in plot::PICTURES {
        let png: PathBuf = out.join(format!("{name}.png"));
        let svg: PathBuf = out.join(format!("{name}.svg"));
        if png.exists() {
            let (w, h) = png_size(&png);
            assert!(w >= 800 && h >= 500, "{name}: {w}×{h}");
            let text = std::fs::read_to_string(&svg).unwrap();
            assert!(text.contains("<svg"), "{name}.svg");
            assert!(
                text.contains(&format!("width=\"{w}\""))
                    && text.contains(&format!("height=\"{h}\"")),
                "{name}.svg has the PNG's size {w}×{h}"
            );
            assert!(text.contains("<text"), "{name}.svg has text");
            assert!(written.contains(&png) && written.contains(&svg), "{name}");
            assert!(
                html.contains(&format!("href=\"{name}.svg\"")),
                "{name} linked"
            );
            assert!(
                html.contains(&format!("<figure id=\"{name}\">")),
                "{name} shown"
            );
            drawn.push(name);
        } else {
            assert!(!svg.exists(), "{name}.svg without {name}.png");
            assert!(
                html.contains(&format!("<b>{name}</b>: not drawn — ")),
                "{name} neither drawn nor explained"
            );
            skipped.push(name);
        }
    }
    assert_eq!(
        html.matches("src=\"data:image/png;base64,").count(),
        drawn.len()
    );
    let leftovers: Vec<_> = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    (drawn, skipped)
}

#[test]
fn reports_of_trained_split_and_constructed_runs() {
    let tmp = tempfile::tempdir().unwrap();

    // 6000 steps of the default recipe: about a third of the neurons are sinusoidal.
    let full = tmp.path().join("full");
    train(&full, 6000, &[]);
    let (drawn, skipped) = check_report(&full);
    assert_eq!(drawn, plot::PICTURES.to_vec(), "skipped {skipped:?}");
    let margin = std::fs::read_to_string(full.join("report/margin.svg")).unwrap();
    assert!(margin.contains("γ* (theory)"));
    let html = std::fs::read_to_string(full.join("report/index.html")).unwrap();
    assert!(html.contains("γ / γ*") && html.contains("a+b mod 23"));

    let split = tmp.path().join("split");
    train(&split, 1500, &["--fraction", "0.6", "--models", "2"]);
    let (drawn, skipped) = check_report(&split);
    // Too short for sinusoidal neurons: the phase histogram may be skipped.
    assert!(
        skipped.iter().all(|&s| s == "phase_residuals"),
        "{skipped:?}"
    );
    assert!(drawn.len() >= 6);
    let curves = std::fs::read_to_string(split.join("report/curves.svg")).unwrap();
    assert!(curves.contains("test, model 1") && curves.contains("2 models overlaid"));
    let html = std::fs::read_to_string(split.join("report/index.html")).unwrap();
    assert!(html.contains("<th class=\"model\">model 1</th>") && html.contains("grokking"));

    let exact = tmp.path().join("construct");
    construct::write_run(cpu().as_ref(), 7, &exact).unwrap();
    let (drawn, skipped) = check_report(&exact);
    assert_eq!(
        drawn,
        vec![
            "spectra_grid",
            "neurons_per_frequency",
            "phase_residuals",
            "irrep_power"
        ]
    );
    assert_eq!(skipped, vec!["curves", "margin", "power_heatmap", "ipr"]);
    let html = std::fs::read_to_string(exact.join("report/index.html")).unwrap();
    assert!(
        html.contains("needs at least two spectra snapshots"),
        "{html}"
    );
}

/// Renders the report of an existing run: `CLOCKWORK_RUN=DIR [CLOCKWORK_REPORT=OUT]
/// cargo test --release --test analysis_plots -- --ignored --nocapture`.
#[test]
#[ignore = "renders a run named by CLOCKWORK_RUN"]
fn render_run_from_env() {
    let Ok(run) = std::env::var("CLOCKWORK_RUN") else {
        eprintln!("set CLOCKWORK_RUN to a run directory");
        return;
    };
    let run = PathBuf::from(run);
    let out = std::env::var("CLOCKWORK_REPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| run.join("report"));
    let t = Instant::now();
    let analysis = pipeline::analyze(cpu().as_ref(), &run, &Options::default()).unwrap();
    let analyzed = t.elapsed();
    tables::write_tables(&analysis, &out).unwrap();
    let t = Instant::now();
    let written = report::write_report(&analysis, &out).unwrap();
    eprintln!(
        "analysis {analyzed:.2?}, report {:.2?}: {} files in {}",
        t.elapsed(),
        written.len(),
        out.display()
    );
}
