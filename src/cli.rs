//! What the two command-line front ends (`train`, `analyze`) share.

/// A command-line parser's multi-line report (clap's) as one line: the message and its
/// indented details, without the usage and the "for more information" tail, so every
/// bad-input error is the one `error:` line the binaries promise.
pub fn one_line(report: &str) -> String {
    report
        .lines()
        .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more information"))
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with("tip:"))
        .collect::<Vec<_>>()
        .join(" ")
        .trim_start_matches("error: ")
        .to_string()
}
