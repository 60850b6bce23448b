//! Finite groups as tasks: the Cayley table `g·h` of a small group, built from
//! permutations (closure from generators) or as a direct product of such groups.
//!
//! Why permutations: every finite group is one (Cayley), and C_n, D_n, S_n and A_n all
//! have two-line generators as permutations of a few points, so one closure routine
//! builds them all and the group axioms hold by construction (tests check them anyway).
//! Element 0 is always the identity. For C_n the closure order makes element k the
//! generator's k-th power, so C_n's table is exactly `a+b mod n` (the analysis tests
//! lean on this to compare the irreps with the Z_p Fourier basis).

use super::{PairSet, Task};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Largest group order accepted. Why a limit: the representation analysis diagonalizes
/// dense |G|×|G| matrices (Jacobi, O(|G|³) per sweep) and γ* is computed when every run
/// starts, so the tables stay small; S5 (120) fits, S6 (720) does not.
pub const MAX_GROUP_ORDER: usize = 128;

/// One factor of a group name: `C5`, `D7`, `S4`, `A4`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    /// Cyclic C_n, order n.
    Cyclic,
    /// Dihedral D_n (symmetries of the n-gon), order 2n.
    Dihedral,
    /// Symmetric S_n, order n!.
    Symmetric,
    /// Alternating A_n, order n!/2.
    Alternating,
}

impl Family {
    fn letter(self) -> char {
        match self {
            Family::Cyclic => 'C',
            Family::Dihedral => 'D',
            Family::Symmetric => 'S',
            Family::Alternating => 'A',
        }
    }

    /// Smallest n accepted, with the reason for it.
    fn min_n(self) -> (usize, &'static str) {
        match self {
            Family::Cyclic => (2, "C_n needs n >= 2 (C1 is the trivial group)"),
            Family::Dihedral => (3, "D_n needs n >= 3 (D2 is C2xC2, D1 is C2)"),
            Family::Symmetric => (2, "S_n needs n >= 2 (S1 is the trivial group)"),
            Family::Alternating => (3, "A_n needs n >= 3 (A2 is the trivial group)"),
        }
    }

    /// The order of the family's group of degree n, saturating (so S100 is "too big",
    /// not an overflow).
    fn order(self, n: usize) -> usize {
        let factorial = |n: usize| (1..=n).fold(1usize, |acc, k| acc.saturating_mul(k));
        match self {
            Family::Cyclic => n,
            Family::Dihedral => n.saturating_mul(2),
            Family::Symmetric => factorial(n),
            Family::Alternating => factorial(n) / 2,
        }
    }
}

/// A group named the way configs write it: factors like `C5`, `D7`, `S4`, `A4`, joined
/// by `x` for direct products (`C5xC5`, `S3xC2`). Parse with `str::parse`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupName {
    factors: Vec<(Family, usize)>,
}

impl GroupName {
    /// The group's order (product of the factors' orders).
    pub fn order(&self) -> usize {
        self.factors
            .iter()
            .fold(1usize, |acc, &(f, n)| acc.saturating_mul(f.order(n)))
    }

    /// Whether the group is one cyclic factor C_n (its table is `a+b mod n`).
    pub fn cyclic_order(&self) -> Option<usize> {
        match self.factors.as_slice() {
            [(Family::Cyclic, n)] => Some(*n),
            _ => None,
        }
    }
}

impl std::fmt::Display for GroupName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self
            .factors
            .iter()
            .map(|&(fam, n)| format!("{}{n}", fam.letter()))
            .collect();
        write!(f, "{}", parts.join("x"))
    }
}

const NAME_HELP: &str = "expected factors C<n> (cyclic), D<n> (dihedral, order 2n), S<n> \
                         (symmetric) or A<n> (alternating) joined by 'x' for direct products, \
                         e.g. \"S4\", \"D7\", \"C5xC5\", \"A4\"";

impl std::str::FromStr for GroupName {
    type Err = Error;
    fn from_str(s: &str) -> Result<GroupName> {
        let bad = |reason: String| Error::config("task.group", format!("\"{s}\""), reason);
        if s.is_empty() {
            return Err(bad(NAME_HELP.into()));
        }
        let mut factors = Vec::new();
        for part in s.split('x') {
            let mut chars = part.chars();
            let family = match chars.next() {
                Some('C') => Family::Cyclic,
                Some('D') => Family::Dihedral,
                Some('S') => Family::Symmetric,
                Some('A') => Family::Alternating,
                _ => {
                    return Err(bad(format!(
                        "factor \"{part}\" is not a group; {NAME_HELP}"
                    )))
                }
            };
            let digits = chars.as_str();
            let n: usize = match digits.parse() {
                Ok(n) if !digits.starts_with('+') => n,
                _ => return Err(bad(format!("factor \"{part}\" has no degree; {NAME_HELP}"))),
            };
            let (min, why) = family.min_n();
            if n < min {
                return Err(bad(why.into()));
            }
            factors.push((family, n));
        }
        let name = GroupName { factors };
        let order = name.order();
        if order > MAX_GROUP_ORDER {
            let shown = if order == usize::MAX {
                "more than 10^19".to_string()
            } else {
                order.to_string()
            };
            return Err(bad(format!(
                "too big: {shown} elements, at most {MAX_GROUP_ORDER} (the representation \
                 analysis diagonalizes dense |G|×|G| matrices; S5, order 120, is the largest \
                 symmetric group that fits)"
            )));
        }
        Ok(name)
    }
}

/// A permutation of `0..k`, as the images of the points.
type Perm = Vec<u8>;

/// `(p∘q)(i) = p(q(i))`: first q, then p.
fn compose(p: &Perm, q: &Perm) -> Perm {
    q.iter().map(|&i| p[i as usize]).collect()
}

/// Cycle notation, fixed points left out, `e` for the identity: `(0 1 2)(3 4)`.
fn cycle_name(p: &Perm) -> String {
    let mut seen = vec![false; p.len()];
    let mut out = String::new();
    for start in 0..p.len() {
        if seen[start] || p[start] as usize == start {
            continue;
        }
        let mut cycle = vec![start.to_string()];
        seen[start] = true;
        let mut i = p[start] as usize;
        while i != start {
            seen[i] = true;
            cycle.push(i.to_string());
            i = p[i] as usize;
        }
        out.push_str(&format!("({})", cycle.join(" ")));
    }
    if out.is_empty() {
        "e".into()
    } else {
        out
    }
}

/// A word in the generators, run-length encoded: `[r, r, s]` with letters `rs` is
/// `r^2 s`; the empty word is `e`.
fn word_name(word: &[usize], letters: &[&str]) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for &g in word {
        match runs.last_mut() {
            Some((last, count)) if *last == g => *count += 1,
            _ => runs.push((g, 1)),
        }
    }
    if runs.is_empty() {
        return "e".into();
    }
    runs.iter()
        .map(|&(g, c)| {
            if c == 1 {
                letters[g].to_string()
            } else {
                format!("{}^{c}", letters[g])
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// How the elements of a permutation group are named.
enum Naming<'a> {
    /// By cycle notation (S_n, A_n).
    Cycles,
    /// By a shortest word in the generators, with these letters (C_n, D_n).
    Words(&'a [&'a str]),
}

/// A finite group as its Cayley table.
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// The name it was built from, e.g. `S4`.
    pub name: String,
    /// `table[a·n + b]` = index of `a·b`; element 0 is the identity.
    table: Vec<u32>,
    /// `inverse[a]` = index of `a⁻¹`.
    inverse: Vec<u32>,
    /// A readable name per element (`(0 1 2)`, `r^2 s`, `(g, h)`).
    pub element_names: Vec<String>,
}

impl Group {
    /// Builds the group a [`GroupName`] names.
    pub fn build(name: &GroupName) -> Group {
        let mut factors = name.factors.iter().map(|&(f, n)| Group::family(f, n));
        let first = factors.next().expect("a parsed name has a factor");
        let mut g = factors.fold(first, |acc, h| acc.product(&h));
        g.name = name.to_string();
        g
    }

    /// Parses a name (`"S4"`) and builds the group.
    pub fn named(name: &str) -> Result<Group> {
        Ok(Group::build(&name.parse()?))
    }

    fn family(f: Family, n: usize) -> Group {
        let cycle: Perm = (0..n).map(|i| ((i + 1) % n) as u8).collect();
        let name = format!("{}{n}", f.letter());
        match f {
            Family::Cyclic => Group::closure(name, &[cycle], Naming::Words(&["g"])),
            Family::Dihedral => {
                let flip: Perm = (0..n).map(|i| ((n - i) % n) as u8).collect();
                Group::closure(name, &[cycle, flip], Naming::Words(&["r", "s"]))
            }
            Family::Symmetric => {
                let mut swap: Perm = (0..n as u8).collect();
                swap.swap(0, 1);
                Group::closure(name, &[swap, cycle], Naming::Cycles)
            }
            Family::Alternating => {
                // A_n is generated by the 3-cycles (0 1 k), k = 2..n−1.
                let gens: Vec<Perm> = (2..n)
                    .map(|k| {
                        let mut p: Perm = (0..n as u8).collect();
                        p[0] = 1;
                        p[1] = k as u8;
                        p[k] = 0;
                        p
                    })
                    .collect();
                Group::closure(name, &gens, Naming::Cycles)
            }
        }
    }

    /// The group the permutations `gens` generate: breadth-first closure from the
    /// identity under right multiplication by a generator (`x ↦ x∘g`), so elements are
    /// numbered by the length of their shortest word and element 0 is the identity.
    fn closure(name: String, gens: &[Perm], naming: Naming) -> Group {
        let k = gens[0].len();
        let identity: Perm = (0..k as u8).collect();
        let mut elements = vec![identity.clone()];
        let mut words: Vec<Vec<usize>> = vec![Vec::new()];
        let mut index: HashMap<Perm, u32> = HashMap::from([(identity, 0)]);
        let mut next = 0;
        while next < elements.len() {
            for (gi, g) in gens.iter().enumerate() {
                let x = compose(&elements[next], g);
                if !index.contains_key(&x) {
                    index.insert(x.clone(), elements.len() as u32);
                    let mut w = words[next].clone();
                    w.push(gi);
                    words.push(w);
                    elements.push(x);
                }
            }
            next += 1;
        }
        let n = elements.len();
        let mut table = Vec::with_capacity(n * n);
        for a in &elements {
            for b in &elements {
                table.push(index[&compose(a, b)]);
            }
        }
        let element_names = match naming {
            Naming::Cycles => elements.iter().map(cycle_name).collect(),
            Naming::Words(letters) => words.iter().map(|w| word_name(w, letters)).collect(),
        };
        Group::from_table(name, table, element_names)
    }

    fn from_table(name: String, table: Vec<u32>, element_names: Vec<String>) -> Group {
        let n = element_names.len();
        let inverse = (0..n)
            .map(|a| {
                (0..n)
                    .find(|&b| table[a * n + b] == 0)
                    .expect("a group table has inverses") as u32
            })
            .collect();
        Group {
            name,
            table,
            inverse,
            element_names,
        }
    }

    /// The direct product `self × other`: element `(a, b)` has index `a·|other| + b`.
    fn product(&self, other: &Group) -> Group {
        let (n, m) = (self.order(), other.order());
        let mut table = Vec::with_capacity(n * m * n * m);
        for a in 0..n {
            for b in 0..m {
                for c in 0..n {
                    for d in 0..m {
                        table.push(self.mul(a, c) as u32 * m as u32 + other.mul(b, d) as u32);
                    }
                }
            }
        }
        let names = (0..n)
            .flat_map(|a| (0..m).map(move |b| (a, b)))
            .map(|(a, b)| format!("({}, {})", self.element_names[a], other.element_names[b]))
            .collect();
        Group::from_table(format!("{}x{}", self.name, other.name), table, names)
    }

    /// Number of elements |G|.
    pub fn order(&self) -> usize {
        self.element_names.len()
    }

    /// Index of `a·b`.
    pub fn mul(&self, a: usize, b: usize) -> usize {
        self.table[a * self.order() + b] as usize
    }

    /// Index of `a⁻¹`.
    pub fn inverse(&self, a: usize) -> usize {
        self.inverse[a] as usize
    }

    /// The Cayley table as a task: every pair `(a, b)` in row-major order with label
    /// `a·b`; `n_in = n_out = |G|`.
    pub fn task(&self) -> Result<Task> {
        let n = self.order();
        let mut pairs = PairSet::default();
        for a in 0..n {
            for b in 0..n {
                pairs.push(a as u32, b as u32, self.mul(a, b) as u32);
            }
        }
        Task::new(format!("a·b in {}", self.name), n, n, pairs)
    }

    /// Conjugacy classes, each sorted, in order of their smallest element (the identity's
    /// class `[0]` first).
    pub fn conjugacy_classes(&self) -> Vec<Vec<usize>> {
        let n = self.order();
        let mut class_of = vec![usize::MAX; n];
        let mut classes: Vec<Vec<usize>> = Vec::new();
        for x in 0..n {
            if class_of[x] != usize::MAX {
                continue;
            }
            let mut class: Vec<usize> = (0..n)
                .map(|g| self.mul(self.mul(g, x), self.inverse(g)))
                .collect();
            class.sort_unstable();
            class.dedup();
            for &y in &class {
                class_of[y] = classes.len();
            }
            classes.push(class);
        }
        classes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_axioms(g: &Group) {
        let n = g.order();
        for a in 0..n {
            assert_eq!(g.mul(0, a), a, "{}: identity", g.name);
            assert_eq!(g.mul(a, 0), a, "{}: identity", g.name);
            assert_eq!(g.mul(a, g.inverse(a)), 0, "{}: inverse", g.name);
            // Latin square: every row is a permutation.
            let mut row: Vec<usize> = (0..n).map(|b| g.mul(a, b)).collect();
            row.sort_unstable();
            assert!(row.iter().enumerate().all(|(i, &x)| i == x), "{}", g.name);
            for b in 0..n {
                for c in 0..n {
                    assert_eq!(
                        g.mul(g.mul(a, b), c),
                        g.mul(a, g.mul(b, c)),
                        "{}: associativity",
                        g.name
                    );
                }
            }
        }
    }

    #[test]
    fn tables_satisfy_the_group_axioms_and_have_the_right_orders() {
        for (name, order, classes) in [
            ("C5", 5, 5),
            ("C6", 6, 6),
            ("D3", 6, 3),
            ("D4", 8, 5),
            ("D7", 14, 5),
            ("S3", 6, 3),
            ("S4", 24, 5),
            ("A4", 12, 4),
            ("A5", 60, 5),
            ("C2xC2", 4, 4),
            ("S3xC2", 12, 6),
            ("C5xC5", 25, 25),
        ] {
            let g = Group::named(name).unwrap();
            assert_eq!(g.order(), order, "{name}");
            assert_eq!(g.conjugacy_classes().len(), classes, "{name}");
            check_axioms(&g);
            let names: std::collections::HashSet<_> = g.element_names.iter().collect();
            assert_eq!(names.len(), order, "{name}: element names are distinct");
        }
    }

    #[test]
    fn cyclic_elements_are_powers_so_the_table_is_addition() {
        let g = Group::named("C7").unwrap();
        for a in 0..7 {
            for b in 0..7 {
                assert_eq!(g.mul(a, b), (a + b) % 7);
            }
        }
        assert_eq!(g.element_names[3], "g^3");
        let s3 = Group::named("S3").unwrap();
        assert_eq!(s3.element_names[0], "e");
        assert!(s3.element_names.contains(&"(0 1 2)".to_string()));
        assert_eq!(
            Group::named("D4").unwrap().element_names[..3],
            ["e", "r", "s"]
        );
    }

    #[test]
    fn s3_is_not_abelian_and_s4_task_has_every_pair() {
        let g = Group::named("S3").unwrap();
        assert!((0..6).any(|a| (0..6).any(|b| g.mul(a, b) != g.mul(b, a))));
        let t = Group::named("S4").unwrap().task().unwrap();
        assert_eq!((t.n_in, t.n_out, t.len()), (24, 24, 576));
        assert_eq!(t.name, "a·b in S4");
    }

    #[test]
    fn bad_names_are_refused_with_the_value_and_reason() {
        for (name, needle) in [
            ("S9", "too big: 362880 elements"),
            ("S6", "too big: 720"),
            ("S100", "too big: more than"),
            ("C5xC5xC5xC5", "too big: 625"),
            ("Q8", "not a group"),
            ("D2", "D_n needs n >= 3"),
            ("C1", "C_n needs n >= 2"),
            ("S", "no degree"),
            ("S+4", "no degree"),
            ("", "expected factors"),
            ("C5x", "not a group"),
        ] {
            let e = name.parse::<GroupName>().unwrap_err().to_string();
            assert!(e.contains("task.group"), "{name}: {e}");
            assert!(e.contains(&format!("\"{name}\"")), "{name}: {e}");
            assert!(e.contains(needle), "{name}: {e}");
        }
        assert_eq!("S5".parse::<GroupName>().unwrap().order(), 120);
        assert_eq!("C5xC5".parse::<GroupName>().unwrap().to_string(), "C5xC5");
    }
}
