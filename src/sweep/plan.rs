//! Scheduling: points that differ only in per-model settings share a shape group and
//! train together in one [`crate::train::Trainer`] (their settings in `[per_model]`);
//! groups are cut into batches of at most `batch_max` models, trained one after another;
//! a shard `i/n` takes every batch whose index is `i` modulo `n`.
//!
//! Every model gets its own `per_model.seed`, so it is the model a one-model run of its
//! point would train, bit for bit, whichever batch or shard it lands in (the engine's
//! per-model results do not depend on the batch: tests/per_model.rs). That is what lets
//! sharded, resumed and divergence-trimmed sweeps equal one uninterrupted run.

use super::expand::Point;
use crate::config::{PerModelConfig, RunConfig};
use crate::error::{Error, Result};

/// The config keys a batch may vary per model (the rest define the shape group).
pub const PER_MODEL_KEYS: [&str; 7] = [
    "seed",
    "optimizer.lr",
    "optimizer.weight_decay",
    "train.reg_strength",
    "optimizer.grokfast_lambda",
    "model.init_scale",
    "task.train_fraction",
];

/// Points that can share a trainer.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Index in order of first appearance.
    pub index: usize,
    /// One line describing the shared shape and recipe.
    pub describe: String,
    /// Its points' ids, ascending.
    pub points: Vec<usize>,
}

/// Models trained together in one trainer.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch {
    /// Global index (what shards split on, and its directory's name).
    pub index: usize,
    /// Its shape group.
    pub group: usize,
    /// Its points' ids, ascending.
    pub points: Vec<usize>,
}

/// Which slice of the batches a process trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Shard {
    /// 0-based slice.
    pub index: usize,
    /// Number of slices.
    pub count: usize,
}

impl Shard {
    /// The whole sweep.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// Parses `i/n` (0 ≤ i < n).
    pub fn parse(text: &str) -> Result<Shard> {
        let bad = || Error::config("--shard", text, "expected i/n with 0 <= i < n, e.g. 0/4");
        let (i, n) = text.split_once('/').ok_or_else(bad)?;
        let (index, count): (usize, usize) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// Whether batch `b` is in this slice.
    pub fn holds(&self, b: usize) -> bool {
        b % self.count == self.index
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// The sweep's groups and batches.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// Shape groups in order of first appearance.
    pub groups: Vec<Group>,
    /// Batches, group by group.
    pub batches: Vec<Batch>,
}

/// A config with its per-model keys set to fixed values: equal for two points exactly
/// when they can share a trainer.
fn shape_of(config: &RunConfig) -> String {
    let mut c = config.clone();
    c.seed = 0;
    c.optimizer.lr = 0.0;
    c.optimizer.weight_decay = 0.0;
    c.train.reg_strength = 0.0;
    c.optimizer.grokfast_lambda = 0.0;
    c.model.init_scale = 1.0;
    c.task.train_fraction = 1.0;
    c.to_toml()
}

/// Groups the points by shape and cuts each group into batches of at most `batch_max`.
pub fn plan(points: &[Point], batch_max: usize) -> Plan {
    let mut shapes: Vec<String> = Vec::new();
    let mut groups: Vec<Group> = Vec::new();
    for p in points {
        let shape = shape_of(&p.config);
        match shapes.iter().position(|s| *s == shape) {
            Some(g) => groups[g].points.push(p.id),
            None => {
                shapes.push(shape);
                groups.push(Group {
                    index: groups.len(),
                    describe: String::new(),
                    points: vec![p.id],
                });
            }
        }
    }
    for g in &mut groups {
        g.describe = describe_group(points, &g.points);
    }
    let mut batches = Vec::new();
    for g in &groups {
        for chunk in g.points.chunks(batch_max.max(1)) {
            batches.push(Batch {
                index: batches.len(),
                group: g.index,
                points: chunk.to_vec(),
            });
        }
    }
    Plan { groups, batches }
}

/// The shape and recipe a group shares, and the per-model keys that vary in it.
fn describe_group(points: &[Point], ids: &[usize]) -> String {
    let shape = RunConfig {
        models: 1,
        task: crate::config::TaskConfig {
            train_fraction: 1.0,
            ..points[ids[0]].config.task.clone()
        },
        ..points[ids[0]].config.clone()
    };
    let varying: Vec<&str> = PER_MODEL_KEYS
        .iter()
        .copied()
        .filter(|key| {
            let value = |id: usize| {
                let c = &points[id].config;
                match *key {
                    "seed" => c.seed as f64,
                    "optimizer.lr" => c.optimizer.lr,
                    "optimizer.weight_decay" => c.optimizer.weight_decay,
                    "train.reg_strength" => c.train.reg_strength,
                    "optimizer.grokfast_lambda" => c.optimizer.grokfast_lambda,
                    "model.init_scale" => c.model.init_scale,
                    _ => c.task.train_fraction,
                }
            };
            ids.iter().any(|&id| value(id) != value(ids[0]))
        })
        .collect();
    let per_model = if varying.is_empty() {
        String::new()
    } else {
        format!("; per model: {}", varying.join(", "))
    };
    format!("{}{per_model}", crate::run::describe(&shape))
}

/// The config of a batch: its first point's shape with `models` = the batch size and
/// every per-model key given per model (each model with its own seed, stream 0).
pub fn batch_config(points: &[&Point]) -> Result<RunConfig> {
    let first = points
        .first()
        .ok_or_else(|| Error::config("batch", "no points", "a batch needs at least one model"))?;
    let mut config = first.config.clone();
    config.models = points.len();
    let cs: Vec<&RunConfig> = points.iter().map(|p| &p.config).collect();
    config.per_model = PerModelConfig {
        seed: cs.iter().map(|c| c.seed).collect(),
        lr: cs.iter().map(|c| c.optimizer.lr).collect(),
        weight_decay: cs.iter().map(|c| c.optimizer.weight_decay).collect(),
        reg_strength: cs.iter().map(|c| c.train.reg_strength).collect(),
        grokfast_lambda: cs.iter().map(|c| c.optimizer.grokfast_lambda).collect(),
        init_scale: cs.iter().map(|c| c.model.init_scale).collect(),
        // A sampled bit-string task sizes its training set by task.train_size instead.
        train_fraction: match first.config.task.train_size {
            Some(_) => Vec::new(),
            None => cs.iter().map(|c| c.task.train_fraction).collect(),
        },
    };
    config.validate()?;
    Ok(config)
}

/// A checksum of everything that decides the sweep's results and their slicing: every
/// point's config, the batch cut and the category thresholds. Shards merge only when
/// theirs are equal.
pub fn fingerprint(points: &[Point], plan: &Plan, thresholds: (f64, f64)) -> String {
    let mut h = crc32fast::Hasher::new();
    for p in points {
        h.update(p.config.to_toml().as_bytes());
        for (k, v) in &p.settings {
            h.update(format!("{k}={v};").as_bytes());
        }
    }
    for b in &plan.batches {
        h.update(format!("{:?}", b.points).as_bytes());
    }
    h.update(format!("{:?}", thresholds).as_bytes());
    format!("{:08x}-{}", h.finalize(), points.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition() {
        assert_eq!(Shard::parse("1/3").unwrap(), Shard { index: 1, count: 3 });
        for bad in ["3/3", "1", "a/2", "0/0"] {
            let e = Shard::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        for b in 0..10 {
            assert_eq!(shards.iter().filter(|s| s.holds(b)).count(), 1);
        }
    }
}
