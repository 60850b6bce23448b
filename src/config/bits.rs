//! The `[task]` keys of bit-string tasks (`task.bits`, `parity_k`, `encoding`,
//! `train_size`, `test_size`): what they build and what they refuse. Kept apart from the
//! table keys because they exclude each other, and every exclusion is a named error.

use super::*;
use crate::task::Parity;

/// The parity label's default subset size (seed 003: the first three bits).
pub const DEFAULT_PARITY_K: usize = 3;
/// Held-out strings per model of a sampled bit-string task, unless `task.test_size`.
pub const DEFAULT_TEST_SIZE: usize = 1000;
/// Seed of a sampled task's pool of strings. Fixed, not `seed`: a batch's models carry
/// their own seeds (`[per_model]`), and model k must train exactly as it would alone,
/// so the pool cannot depend on which seed the batch's config happens to hold; each
/// model's seed then picks its training strings from the pool (its split).
pub const POOL_SEED: u64 = 0;

impl RunConfig {
    /// The parity task of `[task]`, None for a table.
    pub fn parity(&self) -> Option<Parity> {
        self.task.bits.map(|n| Parity {
            n,
            k: self.task.parity_k.unwrap_or(DEFAULT_PARITY_K),
            encoding: self.task.encoding.unwrap_or_default(),
        })
    }

    /// Held-out strings of a sampled bit-string task.
    fn test_size(&self) -> usize {
        self.task.test_size.unwrap_or(DEFAULT_TEST_SIZE)
    }

    /// A sampled bit-string task's fraction of its pool that each model trains on,
    /// `train_size / (train_size + test_size)`; None otherwise. (The split rounds
    /// `fraction · pool` to exactly `train_size`.)
    pub(super) fn sampled_fraction(&self) -> Option<f64> {
        let n = self.task.train_size?;
        Some(n as f64 / (n + self.test_size()) as f64)
    }

    /// The bit-string task, when `[task]` names one: the full population, or the pool of
    /// `train_size + test_size` distinct strings drawn from [`POOL_SEED`].
    pub(super) fn build_bits_task(&self) -> Result<Option<Task>> {
        let Some(parity) = self.parity() else {
            return Ok(None);
        };
        match self.task.train_size {
            None => parity.population().map(Some),
            Some(n) => parity.sampled(n + self.test_size(), POOL_SEED).map(Some),
        }
    }

    /// The bit-string keys: each only with `task.bits`, `task.bits` without the table
    /// keys, sizes in range, and a model that can take a dense input.
    pub(super) fn validate_bits(&self) -> Result<()> {
        let t = &self.task;
        let Some(parity) = self.parity() else {
            let stray = [
                ("task.parity_k", t.parity_k.map(|x| x.to_string())),
                ("task.encoding", t.encoding.map(|e| e.name().to_string())),
                ("task.train_size", t.train_size.map(|x| x.to_string())),
                ("task.test_size", t.test_size.map(|x| x.to_string())),
            ];
            if let Some((key, Some(value))) = stray.into_iter().find(|(_, v)| v.is_some()) {
                return Err(Error::config(
                    key,
                    value,
                    "only bit-string tasks take this key (set task.bits)",
                ));
            }
            return Ok(());
        };
        parity.check()?;
        let default = TaskConfig::default();
        let n = parity.n;
        let excluded = [
            ("task.op", t.op != default.op, t.op.name().to_string()),
            ("task.p", t.p != default.p, t.p.to_string()),
            (
                "task.group",
                t.group.is_some(),
                t.group.clone().unwrap_or_default(),
            ),
            (
                "task.split",
                t.split != default.split,
                t.split.name().to_string(),
            ),
            ("model.tied", self.model.tied, "true".into()),
            (
                "model.embed_dim",
                self.model.embed_dim > 0,
                self.model.embed_dim.to_string(),
            ),
            (
                "model.init",
                self.model.init != InitKind::Gaussian,
                "fourier-sparse".into(),
            ),
        ];
        if let Some((key, _, value)) = excluded.into_iter().find(|(_, bad, _)| *bad) {
            return Err(Error::config(
                key,
                value,
                format!(
                    "task.bits = {n} is a bit-string task with a dense first layer; leave \
                     {key} out"
                ),
            ));
        }
        if t.test_size.is_some() && t.train_size.is_none() {
            return Err(Error::config(
                "task.test_size",
                self.test_size(),
                "only a sampled task (task.train_size) has a test size; the population \
                 task is split by task.train_fraction",
            ));
        }
        if let Some(train) = t.train_size {
            if train == 0 {
                return Err(Error::config("task.train_size", 0, "must be at least 1"));
            }
            if self.test_size() == 0 {
                return Err(Error::config(
                    "task.test_size",
                    0,
                    "must be at least 1 (a sampled task measures generalization on it)",
                ));
            }
            if t.train_fraction != default.train_fraction
                || !self.per_model.train_fraction.is_empty()
            {
                return Err(Error::config(
                    "task.train_fraction",
                    t.train_fraction,
                    "a sampled bit-string task sets its training set by task.train_size; \
                     leave task.train_fraction and per_model.train_fraction out",
                ));
            }
            let pool = train as u64 + self.test_size() as u64;
            if n < 64 && pool > 1u64 << n {
                return Err(Error::config(
                    "task.train_size",
                    train,
                    format!(
                        "train_size + test_size = {pool} distinct strings do not exist among \
                         2^{n}"
                    ),
                ));
            }
        } else if n > crate::task::MAX_POPULATION_BITS {
            return Err(Error::config(
                "task.bits",
                n,
                format!(
                    "the full population of 2^{n} strings is too large (at most {} bits); \
                     set task.train_size to sample a training set",
                    crate::task::MAX_POPULATION_BITS
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        RunConfig::from_toml(text).unwrap_err().to_string()
    }

    #[test]
    fn bit_tasks_build_the_parity_table_and_a_dense_model() {
        let c =
            RunConfig::from_toml("[task]\nbits = 10\nparity_k = 4\nencoding = \"01\"\n").unwrap();
        let task = c.build_task().unwrap();
        assert_eq!((task.len(), task.n_in, task.n_out), (1024, 10, 2));
        let spec = c.model_spec();
        assert!(spec.dense && spec.n_in == 10 && spec.n_out == 2);
        assert_eq!(spec.tensors().len(), 2, "u and w, no v");
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c, "round trip");
        assert!(!RunConfig::default().to_toml().contains("bits"));
        // The CUDA backend has the dense-input kernels (kernels/dense_input.cu).
        let cuda = RunConfig::from_toml("device = \"cuda\"\n[task]\nbits = 8\n").unwrap();
        assert!(cuda.model_spec().dense);
        // Sampled: the pool is train + test strings, each model trains on train_size.
        let s = RunConfig::from_toml(
            "seed = 4\nmodels = 3\n[task]\nbits = 30\ntrain_size = 300\ntest_size = 200\n\
             [per_model]\nseed = [1, 2, 3]\n",
        )
        .unwrap();
        assert_eq!(s.build_task().unwrap().len(), 500);
        let (groups, _) = crate::train::split_groups(&s, &s.build_task().unwrap()).unwrap();
        assert_eq!(groups.len(), 3, "one training set per seed");
        for g in &groups {
            assert_eq!((g.train.len(), g.test.len()), (300, 200));
        }
        let (again, _) = crate::train::split_groups(&s, &s.build_task().unwrap()).unwrap();
        assert!(groups
            .iter()
            .zip(&again)
            .all(|(a, b)| *a.train == *b.train && *a.test == *b.test));
    }

    #[test]
    fn bad_bit_task_keys_are_named() {
        let cases = [
            ("[task]\nparity_k = 3\n", "task.parity_k = 3"),
            ("[task]\ntrain_size = 30\n", "task.train_size = 30"),
            ("[task]\nbits = 0\n", "task.bits = 0"),
            ("[task]\nbits = 40\ntrain_size = 10\n", "task.bits = 40"),
            ("[task]\nbits = 30\n", "task.bits = 30"),
            ("[task]\nbits = 8\nparity_k = 9\n", "task.parity_k = 9"),
            ("[task]\nbits = 8\np = 7\n", "task.p = 7"),
            ("[task]\nbits = 8\nop = \"mul\"\n", "task.op = mul"),
            ("[task]\nbits = 8\ntest_size = 5\n", "task.test_size = 5"),
            (
                "[task]\nbits = 8\ntrain_size = 250\n",
                "task.train_size = 250",
            ),
            (
                "[task]\nbits = 20\ntrain_size = 10\ntrain_fraction = 0.5\n",
                "task.train_fraction = 0.5",
            ),
            (
                "[task]\nbits = 8\n[model]\ntied = true\n",
                "model.tied = true",
            ),
            ("[task]\nbits = 8\nencoding = \"pm2\"\n", "encoding"),
        ];
        for (text, want) in cases {
            let e = err(text);
            assert!(e.contains(want), "{text}: {e}");
        }
    }
}
