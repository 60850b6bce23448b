//! The sweep file: what a TOML sweep description says, parsed and checked before
//! anything is expanded or trained. Every refusal names the key and the value.

use crate::error::{Error, Result};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest batch of models one trainer takes unless the sweep file says otherwise.
pub const DEFAULT_BATCH_MAX: usize = 256;

/// A parsed sweep file (see the `sweep` module docs for its format).
#[derive(Clone, Debug, PartialEq)]
pub struct SweepSpec {
    /// Name of the sweep (the file stem unless `name` is given).
    pub name: String,
    /// The preset every point starts from.
    pub preset: String,
    /// A config file merged over the preset (resolved against the sweep file's folder).
    pub config_file: Option<PathBuf>,
    /// `[base.set]`: overrides applied to every point, dotted key → value.
    pub base_set: Vec<(String, toml::Value)>,
    /// `[axes]`: each key with its values, in key order.
    pub axes: Vec<Axis>,
    /// `[[points]]`: explicit settings, crossed with the axes (one empty point if none).
    pub points: Vec<Vec<(String, toml::Value)>>,
    /// Most models per trainer.
    pub batch_max: usize,
    /// `[categories]`: final train accuracy from which a model counts as fitting its
    /// training set.
    pub train_acc: f64,
    /// `[categories]`: final test accuracy from which it counts as generalizing.
    pub test_acc: f64,
    /// `[[diagrams]]`: the phase diagrams to draw.
    pub diagrams: Vec<DiagramSpec>,
}

/// One swept key and its values.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// Dotted config key.
    pub key: String,
    /// Its values, in order.
    pub values: Vec<toml::Value>,
}

/// A phase diagram: metrics over two swept keys.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DiagramSpec {
    /// Key on the horizontal axis.
    pub x: String,
    /// Key on the vertical axis.
    pub y: String,
    /// Per-model metrics drawn as heat maps (mean over the other keys, and spread).
    #[serde(default = "default_metrics")]
    pub metrics: Vec<String>,
}

fn default_metrics() -> Vec<String> {
    vec!["final_test_acc".into(), "grok_step".into()]
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSpec {
    name: Option<String>,
    batch_max: Option<i64>,
    #[serde(default)]
    base: RawBase,
    #[serde(default)]
    axes: BTreeMap<String, toml::Value>,
    #[serde(default)]
    points: Vec<BTreeMap<String, toml::Value>>,
    #[serde(default)]
    categories: RawCategories,
    #[serde(default)]
    diagrams: Vec<DiagramSpec>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBase {
    preset: Option<String>,
    config: Option<PathBuf>,
    #[serde(default)]
    set: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawCategories {
    train_acc: f64,
    test_acc: f64,
}

impl Default for RawCategories {
    fn default() -> Self {
        RawCategories {
            train_acc: crate::analysis::progress::STAGE_ACCURACY,
            test_acc: crate::analysis::progress::STAGE_ACCURACY,
        }
    }
}

/// A point's name: `label = "grokking"` in `[[points]]` (or an axis of strings) is a
/// swept key of the tables and diagrams that sets nothing in the config, so runs that
/// differ in several keys at once can be told apart by one column.
pub const LABEL: &str = "label";

/// Keys the sweep sets itself: a sweep file may not name them.
const RESERVED: [&str; 1] = ["models"];

impl SweepSpec {
    /// Reads and parses a sweep file.
    pub fn read(path: &Path) -> Result<SweepSpec> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sweep".into());
        let folder = path.parent().unwrap_or(Path::new("."));
        SweepSpec::parse(&text, &stem, folder).map_err(|e| match e {
            Error::InvalidConfig { .. } => e,
            other => Error::BadFile {
                path: path.into(),
                reason: other.to_string(),
            },
        })
    }

    /// Parses sweep TOML; `stem` names the sweep when it has no `name`, `folder` is
    /// where a relative `base.config` is looked up.
    pub fn parse(text: &str, stem: &str, folder: &Path) -> Result<SweepSpec> {
        let raw: RawSpec = toml::from_str(text).map_err(|e| {
            Error::config(
                "sweep file",
                "TOML",
                e.to_string().trim_end().replace('\n', " "),
            )
        })?;
        let batch_max = match raw.batch_max {
            None => DEFAULT_BATCH_MAX,
            Some(b) if b >= 1 => b as usize,
            Some(b) => return Err(Error::config("batch_max", b, "must be at least 1")),
        };
        for (key, x) in [
            ("categories.train_acc", raw.categories.train_acc),
            ("categories.test_acc", raw.categories.test_acc),
        ] {
            if !(0.0..=1.0).contains(&x) {
                return Err(Error::config(key, x, "an accuracy threshold in [0, 1]"));
            }
        }
        let name = raw.name.unwrap_or_else(|| stem.to_string());
        if name.is_empty() || name.contains(['/', '\\']) {
            return Err(Error::config(
                "name",
                &name,
                "must be a non-empty name without slashes",
            ));
        }
        let check_reserved = |where_: &str, key: &str| -> Result<()> {
            if RESERVED.contains(&key) || key.starts_with("per_model") {
                return Err(Error::config(
                    &format!("{where_}.{key}"),
                    key,
                    "the sweep sets models and [per_model] itself (it batches the points)",
                ));
            }
            Ok(())
        };
        let mut base_set = Vec::new();
        for (key, value) in raw.base.set {
            check_reserved("base.set", &key)?;
            base_set.push((key, value));
        }
        let mut axes = Vec::new();
        for (key, value) in raw.axes {
            check_reserved("axes", &key)?;
            let values = axis_values(&key, &value)?;
            axes.push(Axis { key, values });
        }
        let mut points = Vec::new();
        for (i, point) in raw.points.into_iter().enumerate() {
            if point.is_empty() {
                return Err(Error::config(
                    &format!("points[{i}]"),
                    "{}",
                    "an explicit point must set at least one key",
                ));
            }
            let mut settings = Vec::new();
            for (key, value) in point {
                check_reserved(&format!("points[{i}]"), &key)?;
                if key == LABEL && !value.is_str() {
                    return Err(Error::config(
                        &format!("points[{i}].{LABEL}"),
                        value,
                        "a label is a string naming the point",
                    ));
                }
                if axes.iter().any(|a| a.key == key) {
                    return Err(Error::config(
                        &format!("points[{i}].{key}"),
                        value,
                        "this key is also an axis; set it in one place",
                    ));
                }
                settings.push((key, value));
            }
            points.push(settings);
        }
        Ok(SweepSpec {
            name,
            preset: raw.base.preset.unwrap_or_else(|| "default".into()),
            config_file: raw.base.config.map(|c| folder.join(c)),
            base_set,
            axes,
            points,
            batch_max,
            train_acc: raw.categories.train_acc,
            test_acc: raw.categories.test_acc,
            diagrams: raw.diagrams,
        })
    }

    /// The keys that vary between points (axes first, then those of explicit points).
    pub fn swept_keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.axes.iter().map(|a| a.key.clone()).collect();
        for point in &self.points {
            for (key, _) in point {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        keys
    }
}

/// The values of one axis: a list, or a table `{ linspace = [a, b, n] }`,
/// `{ logspace = [a, b, n] }`, `{ range = [start, stop, step] }` (stop excluded) or
/// `{ seeds = n, first = s }`.
fn axis_values(key: &str, value: &toml::Value) -> Result<Vec<toml::Value>> {
    let key = format!("axes.{key}");
    let values = match value {
        toml::Value::Array(list) => list.clone(),
        toml::Value::Table(t) => {
            let forms = ["linspace", "logspace", "range", "seeds"];
            let form = t.keys().find(|k| forms.contains(&k.as_str()));
            let extra: Vec<&String> = t
                .keys()
                .filter(|k| !forms.contains(&k.as_str()) && k.as_str() != "first")
                .collect();
            if let Some(k) = extra.first() {
                return Err(Error::config(
                    &format!("{key}.{k}"),
                    &t[k.as_str()],
                    "unknown axis form; write a list or one of linspace = [a, b, n], \
                     logspace = [a, b, n], range = [start, stop, step], seeds = n",
                ));
            }
            match form.map(String::as_str) {
                Some("seeds") => seeds(&key, t)?,
                Some("range") => range(&key, &t["range"])?,
                Some(f @ ("linspace" | "logspace")) => spaced(&key, f, &t[f])?,
                _ => {
                    return Err(Error::config(
                        &key,
                        value,
                        "an axis is a list or one of linspace, logspace, range, seeds",
                    ))
                }
            }
        }
        other => {
            return Err(Error::config(
                &key,
                other,
                "an axis is a list of values or a table such as { linspace = [a, b, n] }",
            ))
        }
    };
    if values.is_empty() {
        return Err(Error::config(&key, value, "the axis has no values"));
    }
    Ok(values)
}

fn number(key: &str, v: &toml::Value) -> Result<f64> {
    match v {
        toml::Value::Float(x) => Ok(*x),
        toml::Value::Integer(i) => Ok(*i as f64),
        other => Err(Error::config(key, other, "expected a number")),
    }
}

fn triple<'a>(key: &str, v: &'a toml::Value, form: &str) -> Result<&'a [toml::Value]> {
    match v {
        toml::Value::Array(a) if a.len() == 3 => Ok(a),
        other => Err(Error::config(
            &format!("{key}.{form}"),
            other,
            "expected three numbers [a, b, n]",
        )),
    }
}

fn seeds(key: &str, t: &toml::Table) -> Result<Vec<toml::Value>> {
    let int = |name: &str, default: i64| -> Result<i64> {
        match t.get(name) {
            None => Ok(default),
            Some(toml::Value::Integer(i)) if *i >= 0 => Ok(*i),
            Some(other) => Err(Error::config(
                &format!("{key}.{name}"),
                other,
                "expected a non-negative integer",
            )),
        }
    };
    let (n, first) = (int("seeds", 0)?, int("first", 0)?);
    Ok((first..first + n).map(toml::Value::Integer).collect())
}

fn range(key: &str, v: &toml::Value) -> Result<Vec<toml::Value>> {
    let a = triple(key, v, "range")?;
    let bad = || {
        Error::config(
            &format!("{key}.range"),
            v,
            "expected [start, stop, step] with step > 0 (stop excluded)",
        )
    };
    if let (toml::Value::Integer(s), toml::Value::Integer(e), toml::Value::Integer(d)) =
        (&a[0], &a[1], &a[2])
    {
        if *d <= 0 {
            return Err(bad());
        }
        return Ok((*s..*e)
            .step_by(*d as usize)
            .map(toml::Value::Integer)
            .collect());
    }
    let (s, e, d) = (
        number(key, &a[0])?,
        number(key, &a[1])?,
        number(key, &a[2])?,
    );
    if !(d > 0.0 && s.is_finite() && e.is_finite()) {
        return Err(bad());
    }
    let n = ((e - s) / d - 1e-9).ceil().max(0.0) as usize;
    Ok((0..n)
        .map(|i| toml::Value::Float(s + i as f64 * d))
        .collect())
}

fn spaced(key: &str, form: &str, v: &toml::Value) -> Result<Vec<toml::Value>> {
    let a = triple(key, v, form)?;
    let (lo, hi) = (number(key, &a[0])?, number(key, &a[1])?);
    let n = match &a[2] {
        toml::Value::Integer(n) if *n >= 1 => *n as usize,
        other => {
            return Err(Error::config(
                &format!("{key}.{form}"),
                other,
                "the count n must be an integer >= 1",
            ))
        }
    };
    let log = form == "logspace";
    if !(lo.is_finite() && hi.is_finite()) || (log && !(lo > 0.0 && hi > 0.0)) {
        return Err(Error::config(
            &format!("{key}.{form}"),
            v,
            if log {
                "logspace needs positive finite ends"
            } else {
                "linspace needs finite ends"
            },
        ));
    }
    let t = |i: usize| {
        if n == 1 {
            0.0
        } else {
            i as f64 / (n - 1) as f64
        }
    };
    Ok((0..n)
        .map(|i| {
            let x = if log {
                (lo.ln() + t(i) * (hi.ln() - lo.ln())).exp()
            } else {
                lo + t(i) * (hi - lo)
            };
            toml::Value::Float(round_sig(x))
        })
        .collect())
}

/// Rounds to 12 significant digits, so 10^(−3) prints as 0.001 and not 0.0010000000000000002.
fn round_sig(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<SweepSpec> {
        SweepSpec::parse(text, "t", Path::new("."))
    }

    #[test]
    fn axis_forms_expand() {
        let s = parse(
            "[axes]\na = [1, 2]\nb = { linspace = [0.0, 1.0, 3] }\nc = { logspace = [1e-3, 1e-1, 3] }\n\
             d = { range = [16, 64, 16] }\nseed = { seeds = 2, first = 5 }\n",
        )
        .unwrap();
        let vals = |k: &str| {
            s.axes
                .iter()
                .find(|a| a.key == k)
                .unwrap()
                .values
                .iter()
                .map(|v| v.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(vals("a"), "1 2");
        assert_eq!(vals("b"), "0.0 0.5 1.0");
        assert_eq!(vals("c"), "0.001 0.01 0.1");
        assert_eq!(vals("d"), "16 32 48");
        assert_eq!(vals("seed"), "5 6");
    }

    #[test]
    fn bad_axes_are_named() {
        let e = parse("[axes]\n\"model.width\" = []\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("axes.model.width") && e.contains("no values"),
            "{e}"
        );
        let e = parse("[axes]\nx = { logspace = [0.0, 1.0, 3] }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("axes.x.logspace"), "{e}");
        let e = parse("[axes]\nmodels = [1, 2]\n").unwrap_err().to_string();
        assert!(e.contains("axes.models"), "{e}");
        let e = parse("batch_max = 0\n").unwrap_err().to_string();
        assert!(e.contains("batch_max = 0"), "{e}");
        let e = parse("[axes]\nx = { linspace = [0.0, 1.0, 3], step = 2 }\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("axes.x.step"), "{e}");
        let e = parse("[axis]\nx = [1]\n").unwrap_err().to_string();
        assert!(e.contains("axis"), "{e}");
    }
}
