use super::*;

/// A two-model run with AdamW moments in use and no Grokfast EMA (an empty buffer,
/// which the file leaves out).
fn fixture() -> (RunConfig, Weights<f32>, TrainerState<f32>) {
    let mut config = RunConfig {
        models: 2,
        ..RunConfig::default()
    };
    config.task.p = 5;
    config.model.width = 8;
    let params = config.init_params::<f32>().unwrap();
    let weights = params.effective();
    let n = params.data.len();
    let state = TrainerState {
        step: 7,
        params: params.data.clone(),
        adam_m: (0..n).map(|i| i as f32 * 1e-3).collect(),
        adam_v: (0..n).map(|i| i as f32 * 1e-6).collect(),
        grokfast_ema: Vec::new(),
        grokfast_window: Vec::new(),
    };
    (config, weights, state)
}

/// Every tensor's data range in the file, from its safetensors header.
fn data_ranges(bytes: &[u8]) -> Vec<(String, std::ops::Range<usize>)> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let mut out: Vec<_> = header
        .as_object()
        .unwrap()
        .iter()
        .filter(|(k, _)| *k != "__metadata__")
        .map(|(k, v)| {
            let o = &v["data_offsets"];
            let (a, b) = (o[0].as_u64().unwrap(), o[1].as_u64().unwrap());
            (k.clone(), 8 + n + a as usize..8 + n + b as usize)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The file re-serialized with its metadata changed by `edit` (tensors unchanged).
fn rewrite(path: &Path, edit: impl FnOnce(&mut HashMap<String, String>)) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    edit(&mut meta);
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let out = safetensors::serialize(st.tensors(), &Some(meta)).unwrap();
    std::fs::write(path, out).unwrap();
}

#[test]
fn a_checkpoint_round_trips_with_a_checksum_per_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (config, weights, state) = fixture();
    save_state(&path, &config, &weights, &state).unwrap();
    assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
    let ck = Checkpoint::load(&path).unwrap();
    assert_eq!(ck.step, 7);
    assert_eq!(ck.weights, weights.cast::<f64>());

    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert_eq!(meta["format"], FORMAT);
    let names: Vec<String> = data_ranges(&bytes).into_iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["adam_m", "adam_v", "params", "u", "v", "w"]);
    for name in &names {
        assert!(
            parse_crc(&meta[&format!("crc32.{name}")]).is_some(),
            "{name}"
        );
    }
    assert!(parse_crc(&meta[METADATA_CRC]).is_some());
}

/// A Grokfast-MA window of 3 gradients is stored as `[B, 3, n]` with its checksum
/// and read back.
#[test]
fn a_grokfast_window_round_trips_with_its_checksum() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (config, weights, mut state) = fixture();
    let n = state.params.len();
    state.grokfast_window = (0..3 * n).map(|i| i as f32 * 0.25).collect();
    save_state(&path, &config, &weights, &state).unwrap();
    assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
    let bytes = std::fs::read(&path).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let meta = header.metadata().clone().unwrap();
    assert!(parse_crc(&meta["crc32.grokfast_window"]).is_some());
    assert_eq!(header.tensors()["grokfast_window"].shape, vec![2, 3, n / 2]);
}

#[test]
fn a_flipped_byte_in_any_tensor_is_refused_naming_tensor_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (config, weights, state) = fixture();
    save_state(&path, &config, &weights, &state).unwrap();
    let good = std::fs::read(&path).unwrap();
    for (name, range) in data_ranges(&good) {
        let mut bytes = good.clone();
        // A byte in the middle of the tensor, flipped so the value stays finite-looking.
        bytes[(range.start + range.end) / 2] ^= 0x01;
        std::fs::write(&path, &bytes).unwrap();
        let errors = [
            Checkpoint::load(&path).unwrap_err(),
            load_state::<f32>(&path, &config).unwrap_err(),
        ];
        for e in errors {
            let msg = e.to_string();
            assert!(matches!(e, Error::BadFile { .. }), "{msg}");
            assert!(
                msg.contains(&format!("tensor '{name}' fails its checksum")),
                "{msg}"
            );
            assert!(msg.contains("ck.safetensors"), "{msg}");
            assert!(msg.contains("stored crc32 "), "{msg}");
            assert!(msg.contains("the file is damaged"), "{msg}");
        }
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
}

#[test]
fn damaged_metadata_or_missing_checksums_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (config, weights, state) = fixture();
    let write = || save_state(&path, &config, &weights, &state).unwrap();
    let refused = |what: &str| {
        let msg = Checkpoint::load(&path).unwrap_err().to_string();
        assert!(msg.contains(what), "{msg}");
        assert!(msg.contains("the file is damaged"), "{msg}");
        let msg = load_state::<f32>(&path, &config).unwrap_err().to_string();
        assert!(msg.contains(what), "{msg}");
    };

    write();
    rewrite(&path, |m| {
        m.insert("step".into(), "8".into());
    });
    refused("the metadata fails its checksum");

    write();
    rewrite(&path, |m| {
        m.remove("crc32.u");
    });
    // The metadata checksum covers the tensor checksums, so it notices first.
    refused("the metadata fails its checksum");

    write();
    rewrite(&path, |m| {
        m.remove("crc32.u");
        let crc = metadata_crc(m);
        m.insert(METADATA_CRC.into(), crc_text(crc));
    });
    refused("tensor 'u' has no checksum (metadata 'crc32.u' is missing)");

    write();
    rewrite(&path, |m| {
        m.insert("crc32.grokfast_ema".into(), "00000000".into());
        let crc = metadata_crc(m);
        m.insert(METADATA_CRC.into(), crc_text(crc));
    });
    refused("tensor 'grokfast_ema', which the file does not hold");

    write();
    rewrite(&path, |m| {
        m.insert("crc32.v".into(), "xyz".into());
        let crc = metadata_crc(m);
        m.insert(METADATA_CRC.into(), crc_text(crc));
    });
    refused("metadata 'crc32.v' = \"xyz\" is not a crc32");

    write();
    rewrite(&path, |m| {
        m.remove(METADATA_CRC);
    });
    refused("the metadata has no checksum");
}

/// Files written before checksums (v1) still load, unverified; an unknown format is
/// refused.
#[test]
fn v1_files_load_without_verification() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ck.safetensors");
    let (config, weights, state) = fixture();
    save_state(&path, &config, &weights, &state).unwrap();
    rewrite(&path, |m| {
        m.retain(|k, _| !k.starts_with(TENSOR_CRC) && k != METADATA_CRC);
        m.insert("format".into(), FORMAT_V1.into());
    });
    assert_eq!(load_state::<f32>(&path, &config).unwrap(), state);
    assert_eq!(Checkpoint::load(&path).unwrap().weights, weights.cast());
    // Nothing to verify against: a damaged v1 file is read as it is.
    let mut bytes = std::fs::read(&path).unwrap();
    let (_, range) = data_ranges(&bytes).pop().unwrap();
    bytes[range.start] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    assert!(Checkpoint::load(&path).is_ok());

    rewrite(&path, |m| {
        m.insert("format".into(), "clockwork-checkpoint-v9".into());
    });
    let msg = Checkpoint::load(&path).unwrap_err().to_string();
    assert!(
        msg.contains("metadata 'format' is 'clockwork-checkpoint-v9'"),
        "{msg}"
    );
}
