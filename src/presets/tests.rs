use super::*;

/// The error message of resolving `preset_name` with `overrides` (which must fail).
fn resolve_error(preset_name: &str, overrides: &[(&str, &str)]) -> String {
    let overrides: Vec<(String, String)> = overrides
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    resolve(preset_name, None, &overrides)
        .unwrap_err()
        .to_string()
}

#[test]
fn every_key_is_documented_and_every_doc_is_a_key() {
    let keys: Vec<String> = keys_with_defaults().into_iter().map(|(k, _)| k).collect();
    for k in &keys {
        assert!(key_doc(k).is_some(), "config key '{k}' has no description");
    }
    for (k, _) in KEY_DOCS {
        assert!(
            keys.iter().any(|x| x == k),
            "KEY_DOCS names '{k}', not a key"
        );
    }
    let reference = key_reference();
    for k in &keys {
        assert!(reference.contains(k.as_str()), "{k} missing from the help");
    }
}

#[test]
fn every_preset_is_valid_and_listed() {
    for (name, _) in PRESETS {
        let c = preset(name).unwrap();
        c.validate()
            .unwrap_or_else(|e| panic!("preset {name}: {e}"));
    }
    assert_eq!(preset("default").unwrap(), RunConfig::default());
    let e = preset("blog").unwrap_err().to_string();
    assert!(e.contains("blog") && e.contains("blog-x2"), "{e}");
}

#[test]
fn overrides_parse_as_toml_values_and_are_type_checked() {
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    let c = resolve(
        "blog-x2",
        None,
        &[
            set("optimizer.lr_milestones", "[100, 200]"),
            set("model.activation", "relu"),
            set("optimizer.lr", "1"),
            set("seed", "7"),
            set("device", "cpu"),
        ],
    )
    .unwrap();
    assert_eq!(c.optimizer.lr_milestones, vec![100, 200]);
    assert_eq!(c.model.activation, Activation::Relu);
    assert_eq!(c.optimizer.lr, 1.0);
    assert_eq!(c.seed, 7);
    assert_eq!(c.task.p, 71);

    let e = resolve_error("default", &[("model.widht", "3")]);
    assert!(e.contains("model.widht") && e.contains("width"), "{e}");
    let e = resolve_error("default", &[("modle.width", "3")]);
    assert!(e.contains("modle") && e.contains("model"), "{e}");
    let e = resolve_error("default", &[("task.p", "abc")]);
    assert!(e.contains("task.p = abc"), "{e}");
    let e = resolve_error("default", &[("task.op", "pow")]);
    assert!(e.contains("task.op = pow"), "{e}");
    let e = resolve_error("default", &[("optimizer.lr", "nan")]);
    assert!(e.contains("optimizer.lr = NaN"), "{e}");
}

#[test]
fn a_file_sets_only_its_keys_over_the_preset() {
    let dir = std::env::temp_dir().join(format!("clockwork-presets-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("run.toml");
    std::fs::write(&path, "seed = 3\n[model]\nwidth = 64\n").unwrap();
    let c = resolve(
        "explainer",
        Some(&path),
        &[("train.steps".into(), "10".into())],
    )
    .unwrap();
    assert_eq!((c.seed, c.model.width, c.train.steps), (3, 64, 10));
    assert_eq!((c.task.p, c.model.embed_dim), (67, 500));

    std::fs::write(&path, "[model]\nwidth = 64\nwidht = 3\n").unwrap();
    let e = resolve("default", Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 3") && e.contains("widht"), "{e}");
    std::fs::write(&path, "[model]\nwidth = = 64\n").unwrap();
    let e = resolve("default", Some(&path), &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("line 2"), "{e}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn explainer_follows_its_colab() {
    let c = preset("explainer").unwrap();
    assert_eq!(c.task.split, SplitKind::Unordered);
    assert_eq!((c.task.p, c.model.width, c.model.embed_dim), (67, 24, 500));
    assert!(c.model.tied);
    assert!((c.optimizer.eps - 6.7e-7).abs() < 1e-20);
    // The draws: E std √(2/67), P_u std 1/√500 (the default rule), P_out std 1/√24.
    let params = c.init_params::<f64>().unwrap();
    let std = |name: &str| {
        let t = params.tensor(0, name).unwrap();
        (t.iter().map(|x| x * x).sum::<f64>() / t.len() as f64).sqrt()
    };
    for (name, want) in [
        ("embed", (2.0f64 / 67.0).sqrt()),
        ("proj_u", 1.0 / 500f64.sqrt()),
        ("proj_out", 1.0 / 24f64.sqrt()),
    ] {
        let got = std(name);
        assert!(
            (got / want - 1.0).abs() < 0.03,
            "{name}: std {got}, want {want}"
        );
    }
    // Without init_scale_out, P_out keeps the 1/√d rule.
    let mut plain = c.clone();
    plain.model.init_scale_out = 0.0;
    let t = plain
        .init_params::<f64>()
        .unwrap()
        .tensor(0, "proj_out")
        .unwrap();
    let got = (t.iter().map(|x| x * x).sum::<f64>() / t.len() as f64).sqrt();
    assert!((got * 500f64.sqrt() - 1.0).abs() < 0.03, "{got}");
}

#[test]
fn gromov_scaling_is_his_output_factor() {
    let (c, lr) = gromov_scaling(97, 512);
    let dn = (2 * 97 * 512) as f64;
    // c³ = 1/(D·N): his f with unit weights is this f with weights c.
    assert!((c.powi(3) * dn - 1.0).abs() < 1e-12);
    // lr = η·c² with η = GROMOV_ETA_PER_DN·D·N.
    assert!((lr / (GROMOV_ETA_PER_DN * dn * c * c) - 1.0).abs() < 1e-12);
    let p = preset("gromov-mse").unwrap();
    assert_eq!((p.model.init_scale, p.optimizer.lr), (c, lr));
    assert_eq!(p.train.regularizer, RegularizerKind::None);
    assert_eq!(p.train.loss, Loss::Mse);
}

#[test]
fn an_unordered_split_of_a_non_commutative_op_is_refused() {
    let set = |k: &str, v: &str| (k.to_string(), v.to_string());
    let e = resolve_error("explainer", &[("task.op", "sub")]);
    assert!(e.contains("task.split") && e.contains("sub"), "{e}");
    let e = resolve_error("default", &[("task.split", "sideways")]);
    assert!(e.contains("task.split = sideways"), "{e}");
    let c = resolve("default", None, &[set("task.split", "unordered")]).unwrap();
    assert_eq!(c.task.split, SplitKind::Unordered);
    let e = resolve_error("default", &[("model.init_scale_out", "-1")]);
    assert!(e.contains("model.init_scale_out"), "{e}");
}
