//! Expanding a sweep into its points: the explicit points crossed with the cartesian
//! product of the axes, each resolved to a validated [`RunConfig`] through the same
//! preset → file → override path as `train` ([`crate::presets::resolve`]), so a value the
//! config rejects is refused here, before any training, naming the key and the value.

use super::spec::SweepSpec;
use crate::config::RunConfig;
use crate::error::{Error, Result};

/// One model of the sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// Index in expansion order (the model's id in every table).
    pub id: usize,
    /// The swept keys' values at this point (explicit point keys, then the axes).
    pub settings: Vec<(String, toml::Value)>,
    /// The resolved, validated one-model config of this point.
    pub config: RunConfig,
}

/// Every point of `spec`: explicit points (or one empty point) outermost, then the axes
/// in key order with `seed` innermost, so a cell's seeds are neighbours.
pub fn expand(spec: &SweepSpec) -> Result<Vec<Point>> {
    let mut axes: Vec<&super::spec::Axis> = spec.axes.iter().collect();
    axes.sort_by_key(|a| a.key == "seed");
    let explicit = if spec.points.is_empty() {
        vec![Vec::new()]
    } else {
        spec.points.clone()
    };
    let mut points = Vec::new();
    // Mixed-radix count over the axes, the last axis fastest.
    let cells: usize = axes.iter().map(|a| a.values.len()).product();
    for base in &explicit {
        for cell in 0..cells {
            let mut settings = base.clone();
            let mut rest = cell;
            let mut picked = Vec::with_capacity(axes.len());
            for axis in axes.iter().rev() {
                picked.push((
                    axis.key.clone(),
                    axis.values[rest % axis.values.len()].clone(),
                ));
                rest /= axis.values.len();
            }
            settings.extend(picked.into_iter().rev());
            let config = resolve_point(spec, &settings, points.len())?;
            points.push(Point {
                id: points.len(),
                settings,
                config,
            });
        }
    }
    Ok(points)
}

/// A value as an override's raw text (what `--set key=value` would carry).
pub fn raw(value: &toml::Value) -> String {
    value.to_string()
}

/// The config of one point: preset, file, `[base.set]`, then the point's settings.
fn resolve_point(
    spec: &SweepSpec,
    settings: &[(String, toml::Value)],
    id: usize,
) -> Result<RunConfig> {
    let overrides: Vec<(String, String)> = spec
        .base_set
        .iter()
        .chain(settings)
        .filter(|(k, _)| k != super::spec::LABEL)
        .map(|(k, v)| (k.clone(), raw(v)))
        .collect();
    let with_point = |e: Error| match e {
        Error::InvalidConfig {
            key,
            value,
            reason,
            source,
        } => {
            let at = settings
                .iter()
                .map(|(k, v)| format!("{k} = {}", raw(v)))
                .collect::<Vec<_>>()
                .join(", ");
            Error::InvalidConfig {
                key,
                value,
                reason: format!("{reason} (sweep point {id}: {at})"),
                source,
            }
        }
        other => other,
    };
    let config = crate::presets::resolve(&spec.preset, spec.config_file.as_deref(), &overrides)
        .map_err(with_point)?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn product_order_and_rejected_values() {
        let spec = SweepSpec::parse(
            "[base.set]\n\"task.p\" = 7\n\"model.width\" = 8\n[axes]\nseed = [0, 1]\n\
             \"optimizer.lr\" = [0.1, 0.2, 0.3]\n",
            "t",
            Path::new("."),
        )
        .unwrap();
        let points = expand(&spec).unwrap();
        assert_eq!(points.len(), 6);
        // seed innermost.
        assert_eq!(points[0].config.seed, 0);
        assert_eq!(points[1].config.seed, 1);
        assert_eq!(points[1].config.optimizer.lr, 0.1);
        assert_eq!(points[2].config.optimizer.lr, 0.2);
        assert_eq!(points[5].config.task.p, 7);

        let spec = SweepSpec::parse(
            "[axes]\n\"optimizer.lr\" = [0.1, -1.0]\n",
            "t",
            Path::new("."),
        )
        .unwrap();
        let e = expand(&spec).unwrap_err().to_string();
        assert!(e.contains("optimizer.lr = -1"), "{e}");
        let spec =
            SweepSpec::parse("[axes]\n\"model.widht\" = [3]\n", "t", Path::new(".")).unwrap();
        let e = expand(&spec).unwrap_err().to_string();
        assert!(e.contains("model.widht"), "{e}");
        let spec = SweepSpec::parse(
            "[axes]\n\"task.group\" = [\"S3\", \"S6\"]\n",
            "t",
            Path::new("."),
        )
        .unwrap();
        let e = expand(&spec).unwrap_err().to_string();
        assert!(e.contains("task.group") && e.contains("S6"), "{e}");
    }
}
