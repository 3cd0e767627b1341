//! The CLIP encoder and preprocessing against reference outputs produced by
//! transformers and open_clip (tests/fixtures/clip/gen_clip_fixtures.py).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use pairguard_clip::{ImageEncoder, Layout, Preprocessor};
use pairguard_data::hub::HubOptions;
use safetensors::SafeTensors;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip")
}

fn reference(name: &str) -> (Vec<f32>, Vec<usize>) {
    let bytes = std::fs::read(fixtures().join("reference.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let t = st.tensor(name).unwrap();
    (t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), t.shape().to_vec())
}

fn l2(v: &[f32], d: usize) -> Vec<f32> {
    v.chunks(d)
        .flat_map(|r| {
            let n = r.iter().map(|x| x * x).sum::<f32>().sqrt();
            r.iter().map(move |x| x / n)
        })
        .collect()
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

fn check(enc: &ImageEncoder, reference_name: &str) {
    let (pixels, shape) = reference("pixels");
    let (want, _) = reference(reference_name);
    let got = enc.embed_pixels(pixels, shape[0]);
    let d = enc.config.projection_dim;
    let err = max_diff(&l2(&got, d), &l2(&want, d));
    assert!(err <= 1e-4, "{reference_name}: max abs difference {err} on L2-normalised embeddings");
}

#[test]
fn hugging_face_layout_matches_transformers_quickgelu_and_gelu() {
    let dev = Device::flex();
    for (dir, reference_name) in [("hf-quickgelu", "embeds_quickgelu"), ("hf-gelu", "embeds_gelu")] {
        let enc = ImageEncoder::load(&fixtures().join(dir).join("model.safetensors"), None, false, &dev).unwrap();
        assert_eq!(enc.layout, Layout::HuggingFace);
        check(&enc, reference_name);
    }
}

#[test]
fn openai_layout_matches_the_same_reference() {
    let dev = Device::flex();
    let enc = ImageEncoder::load(&fixtures().join("openai-quickgelu/open_clip_model.safetensors"), None, true, &dev).unwrap();
    assert_eq!(enc.layout, Layout::OpenAi);
    check(&enc, "embeds_quickgelu");
    // Normalised output has unit length.
    let (pixels, shape) = reference("pixels");
    let out = enc.embed_pixels(pixels, shape[0]);
    for row in out.chunks(enc.config.projection_dim) {
        assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-5);
    }
}

#[test]
fn preprocessing_is_the_references_bit_for_bit() {
    let names: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join("images.json")).unwrap()).unwrap();
    let pre = Preprocessor::clip(224);
    for name in names["images"].as_array().unwrap() {
        let name = name.as_str().unwrap();
        let photo = image::open(fixtures().join(format!("photos/{name}.png"))).unwrap();
        let want = image::open(fixtures().join(format!("pre224/{name}.png"))).unwrap().to_rgb8();
        let got = pre.resize_crop(&photo);
        assert_eq!(got.dimensions(), (224, 224));
        assert!(got == want, "{name}: the resized and cropped image is not Pillow's and torchvision's");
    }
    // The normalised tensor at the model's size is open_clip's, every value.
    let (pixels, shape) = reference("pixels");
    let pre32 = Preprocessor::clip(shape[2]);
    let first = names["images"][0].as_str().unwrap();
    let ours = pre32.pixels(&image::open(fixtures().join(format!("photos/{first}.png"))).unwrap());
    assert_eq!(ours, pixels[..ours.len()], "normalised pixels");
}

fn rewrite(src: &Path, dst: &Path, edit: impl Fn(&mut Vec<(String, Vec<u8>, Vec<usize>)>)) {
    let bytes = std::fs::read(src).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut ts: Vec<(String, Vec<u8>, Vec<usize>)> = st.tensors().into_iter().map(|(n, t)| (n, t.data().to_vec(), t.shape().to_vec())).collect();
    edit(&mut ts);
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        ts.iter().map(|(n, d, s)| (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())).collect();
    std::fs::write(dst, safetensors::serialize(views, None).unwrap()).unwrap();
}

#[test]
fn missing_unknown_and_pickled_weights_are_refused_with_names() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("hf-quickgelu/config.json"), dir.path().join("config.json")).unwrap();
    let src = fixtures().join("hf-quickgelu/model.safetensors");
    let bad = dir.path().join("model.safetensors");
    rewrite(&src, &bad, |ts| {
        ts.retain(|(n, _, _)| n != "vision_model.encoder.layers.1.mlp.fc2.bias");
        let extra = ts[0].clone();
        ts.push(("vision_model.encoder.layers.7.extra".into(), extra.1, extra.2));
    });
    let e = ImageEncoder::load(&bad, None, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("missing keys [vision_model.encoder.layers.1.mlp.fc2.bias]"), "{e}");
    assert!(e.contains("unexpected keys [vision_model.encoder.layers.7.extra]"), "{e}");
    let pickle = dir.path().join("pytorch_model.bin");
    std::fs::write(&pickle, b"\x80\x02}q\x00.").unwrap();
    let e = ImageEncoder::load(&pickle, None, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("pickle checkpoints are not loaded"), "{e}");
    // A checkpoint from another config names the wrong shapes.
    let cfg =
        std::fs::read_to_string(fixtures().join("hf-quickgelu/config.json")).unwrap().replace("\"projection_dim\": 32", "\"projection_dim\": 16");
    std::fs::write(dir.path().join("config.json"), cfg).unwrap();
    std::fs::copy(&src, &bad).unwrap();
    let e = ImageEncoder::load(&bad, None, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("visual_projection.weight: [64, 32], expected [64, 16]"), "{e}");
    // A non-finite weight is named.
    rewrite(&src, &bad, |ts| {
        let t = ts.iter_mut().find(|(n, _, _)| n == "vision_model.post_layernorm.bias").unwrap();
        t.1[4..8].copy_from_slice(&f32::NAN.to_le_bytes());
    });
    std::fs::copy(fixtures().join("hf-quickgelu/config.json"), dir.path().join("config.json")).unwrap();
    let e = ImageEncoder::load(&bad, None, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("post_layernorm.beta: non-finite value at index 1"), "{e}");
}

/// Tensors of the wrong rank are named errors, not panics.
#[test]
fn scalars_and_vectors_where_matrices_belong_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("hf-quickgelu/config.json"), dir.path().join("config.json")).unwrap();
    let bad = dir.path().join("model.safetensors");
    rewrite(&fixtures().join("hf-quickgelu/model.safetensors"), &bad, |ts| {
        for (n, d, s) in ts.iter_mut() {
            if n == "vision_model.encoder.layers.0.self_attn.q_proj.weight" {
                *d = d[..4].to_vec();
                *s = vec![];
            } else if n == "visual_projection.weight" {
                *s = vec![s.iter().product()];
            }
        }
    });
    let e = ImageEncoder::load(&bad, None, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("layers.0.self_attn.qkv_proj.weight") && e.contains("q_proj.weight"), "{e}");
    assert!(e.contains("visual_projection.weight"), "{e}");
}

/// Half-precision checkpoints (as many Hub repos ship) load to the same
/// function within half precision's rounding.
#[test]
fn half_precision_checkpoints_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures().join("hf-quickgelu/config.json"), dir.path().join("config.json")).unwrap();
    let half = dir.path().join("model.safetensors");
    let bytes = std::fs::read(fixtures().join("hf-quickgelu/model.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let converted: Vec<(String, Vec<u8>, Vec<usize>)> = st
        .tensors()
        .into_iter()
        .map(|(n, t)| {
            let data = if t.dtype() == safetensors::Dtype::F32 {
                t.data().chunks_exact(4).flat_map(|c| half::f16::from_f32(f32::from_le_bytes(c.try_into().unwrap())).to_le_bytes()).collect()
            } else {
                t.data().to_vec()
            };
            (n, data, t.shape().to_vec())
        })
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = converted
        .iter()
        .map(|(n, d, s)| {
            let dtype =
                if st.tensor(n).unwrap().dtype() == safetensors::Dtype::F32 { safetensors::Dtype::F16 } else { st.tensor(n).unwrap().dtype() };
            (n.clone(), safetensors::tensor::TensorView::new(dtype, s.clone(), d).unwrap())
        })
        .collect();
    std::fs::write(&half, safetensors::serialize(views, None).unwrap()).unwrap();
    let enc = ImageEncoder::load(&half, None, false, &Device::flex()).unwrap();
    let (pixels, shape) = reference("pixels");
    let (want, _) = reference("embeds_quickgelu");
    let got = enc.embed_pixels(pixels, shape[0]);
    let d = enc.config.projection_dim;
    let err = max_diff(&l2(&got, d), &l2(&want, d));
    assert!(err <= 5e-3, "f16 checkpoint: max abs difference {err}");
}

#[test]
fn hub_loading_works_offline_from_a_hub_laid_out_cache() {
    let cache = tempfile::tempdir().unwrap();
    let sha = "89ab89ab89ab89ab89ab89ab89ab89ab89ab89ab";
    let snap = cache.path().join("models--acme--tiny-clip/snapshots").join(sha);
    std::fs::create_dir_all(&snap).unwrap();
    for f in ["config.json", "model.safetensors"] {
        std::fs::copy(fixtures().join("hf-quickgelu").join(f), snap.join(f)).unwrap();
    }
    let opts = HubOptions { offline: true, cache_dir: Some(cache.path().to_path_buf()), token: None, endpoint: None };
    let enc = ImageEncoder::from_hub("acme/tiny-clip", sha, &opts, false, &Device::flex()).unwrap();
    assert_eq!(enc.id.model, "acme/tiny-clip");
    assert_eq!(enc.id.revision.as_deref(), Some(sha));
    check(&enc, "embeds_quickgelu");
    let e = ImageEncoder::from_hub("acme/other", sha, &opts, false, &Device::flex()).unwrap_err().to_string();
    assert!(e.contains("offline mode"), "{e}");
}

mod full_checkpoints {
    //! Both towers of one checkpoint against transformers and open_clip
    //! (tests/fixtures/clip-full/gen_full_fixtures.py).

    use super::*;
    use pairguard_clip::{Pooling, TextConfig, load_text_weights};

    fn dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-full")
    }

    fn tensor(name: &str) -> (Vec<u8>, Vec<usize>) {
        let bytes = std::fs::read(dir().join("reference.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let t = st.tensor(name).unwrap();
        (t.data().to_vec(), t.shape().to_vec())
    }

    fn floats(name: &str) -> (Vec<f32>, Vec<usize>) {
        let (b, s) = tensor(name);
        (b.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect(), s)
    }

    /// Token rows, each cut after its last non-zero id (the padding).
    fn tokens(name: &str) -> Vec<Vec<u32>> {
        let (b, s) = tensor(name);
        let ids: Vec<u32> = b.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap()) as u32).collect();
        ids.chunks(s[1])
            .map(|r| {
                let end = r.iter().rposition(|&t| t != 0).map_or(0, |p| p + 1);
                r[..end].to_vec()
            })
            .collect()
    }

    fn text_embeds(config: &Path, weights: &Path, seqs: &[Vec<u32>]) -> (Vec<f32>, TextConfig) {
        let dev = Device::flex();
        let cfg = TextConfig::from_file(config).unwrap();
        let mut model = cfg.init(&dev);
        load_text_weights(&mut model, weights).unwrap();
        (model.forward(seqs).unwrap().into_data().try_to_vec::<f32>().unwrap(), cfg)
    }

    #[test]
    fn text_tower_matches_transformers_and_open_clip_in_both_layouts() {
        let (want, _) = floats("text_embeds");
        let seqs = tokens("tokens");
        for (config, weights) in [("hf/config.json", "hf/model.safetensors"), ("openai/open_clip_config.json", "openai/open_clip_model.safetensors")]
        {
            let (got, cfg) = text_embeds(&dir().join(config), &dir().join(weights), &seqs);
            assert_eq!(cfg.pooling, Pooling::Argmax, "{config}");
            let err = max_diff(&l2(&got, 32), &l2(&want, 32));
            assert!(err <= 1e-4, "{weights}: text embeddings differ by {err}");
            // Padding after the end token changes nothing.
            let padded: Vec<Vec<u32>> = seqs.iter().map(|s| s.iter().copied().chain([0, 0, 7]).take(16).collect()).collect();
            let (again, _) = text_embeds(&dir().join(config), &dir().join(weights), &padded);
            assert!(max_diff(&again, &got) <= 1e-5, "{weights}: padding changed the result");
        }
    }

    #[test]
    fn hugging_face_end_token_pooling() {
        let dir = dir();
        let tmp = tempfile::tempdir().unwrap();
        let text = std::fs::read_to_string(dir.join("hf/config.json")).unwrap().replacen("\"eos_token_id\": 2", "\"eos_token_id\": 998", 1);
        let cfg = tmp.path().join("config.json");
        std::fs::write(&cfg, text).unwrap();
        let (want, _) = floats("text_embeds_eos");
        let (got, c) = text_embeds(&cfg, &dir.join("hf/model.safetensors"), &tokens("tokens_eos"));
        assert_eq!(c.pooling, Pooling::EndToken { id: 998 });
        let err = max_diff(&l2(&got, 32), &l2(&want, 32));
        assert!(err <= 1e-4, "end-token pooling differs by {err}");
    }

    #[test]
    fn vision_tower_of_a_full_checkpoint() {
        let dev = Device::flex();
        let (pixels, shape) = floats("pixels");
        let (want, _) = floats("image_embeds");
        for weights in ["hf/model.safetensors", "openai/open_clip_model.safetensors"] {
            let enc = ImageEncoder::load(&dir().join(weights), None, false, &dev).unwrap();
            let got = enc.embed_pixels(pixels.clone(), shape[0]);
            let err = max_diff(&l2(&got, 32), &l2(&want, 32));
            assert!(err <= 1e-4, "{weights}: image embeddings differ by {err}");
        }
    }

    #[test]
    fn text_tower_errors_name_the_problem() {
        let dev = Device::flex();
        let dir = dir();
        let cfg = TextConfig::from_file(&dir.join("hf/config.json")).unwrap();
        // A vision-only checkpoint has no text tower.
        let mut m = cfg.init(&dev);
        let e = load_text_weights(&mut m, &fixtures().join("hf-quickgelu/model.safetensors")).unwrap_err().to_string();
        assert!(e.contains("no CLIP text weights"), "{e}");
        // A config of another width: the mismatch is named.
        let mut m = TextConfig { hidden_size: 64, ..cfg.clone() }.init(&dev);
        let e = load_text_weights(&mut m, &dir.join("hf/model.safetensors")).unwrap_err().to_string();
        assert!(e.contains("text tower") && e.contains("token_embedding"), "{e}");
        let mut m = cfg.init(&dev);
        load_text_weights(&mut m, &dir.join("openai/open_clip_model.safetensors")).unwrap();
        for (seq, needle) in [(vec![0, 5000, 999], "outside the vocabulary"), (vec![0; 17], "more than the context"), (vec![], "no end-of-text")] {
            let e = m.forward(&[seq]).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}

mod text_encoder {
    //! Text in, embeddings out: tokenizer and tower together against
    //! transformers (tests/fixtures/clip-full/gen_full_fixtures.py).

    use super::*;
    use pairguard_clip::{Checkpoint, TextEncoder};

    #[test]
    fn prompts_embed_as_transformers_embeds_them() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/clip-full");
        let texts: Vec<String> = serde_json::from_str(&std::fs::read_to_string(dir.join("prompts.json")).unwrap()).unwrap();
        let bytes = std::fs::read(dir.join("reference.safetensors")).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let want: Vec<f32> = st.tensor("prompts").unwrap().data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let model = dir.join("hf");
        let enc = TextEncoder::resolve(
            &Checkpoint { name: model.to_str().unwrap().into(), revision: "main".into(), config: None },
            None,
            &HubOptions::default(),
            &Device::flex(),
        )
        .unwrap();
        let emb = enc.embed(&texts).unwrap();
        assert_eq!((emb.texts.len(), emb.dim, emb.tokenizer.as_str()), (texts.len(), 32, "tokenizer.json"));
        let err = max_diff(&emb.x, &l2(&want, 32));
        assert!(err <= 1e-4, "prompt embeddings differ by {err}");
        // The checkpoint's hash ties them to the image embeddings of the same file.
        let images = ImageEncoder::load(&model.join("model.safetensors"), None, true, &Device::flex()).unwrap();
        assert_eq!(emb.checkpoint_sha256, images.id.weights_sha256);
        emb.check_encoder(&images.id).unwrap();
        let other = ImageEncoder::load(&fixtures().join("hf-quickgelu/model.safetensors"), None, true, &Device::flex()).unwrap();
        assert!(emb.check_encoder(&other.id).unwrap_err().to_string().contains("one CLIP checkpoint"));
    }
}

fn worst_cosine(a: &[f32], b: &[f32], d: usize) -> f64 {
    let dot = |x: &[f32], y: &[f32]| x.iter().zip(y).map(|(&x, &y)| f64::from(x) * f64::from(y)).sum::<f64>();
    a.chunks_exact(d).zip(b.chunks_exact(d)).map(|(x, y)| dot(x, y) / (dot(x, x) * dot(y, y)).sqrt()).fold(1.0, f64::min)
}

/// Reduced precision on the fixture photographs: within cosine 0.999 of f32
/// (bf16, f16) and 0.995 (int8) for every encoder and photograph, and
/// recorded in the identity.
#[test]
fn reduced_precision_stays_close_to_f32() {
    use pairguard_data::Precision;
    let dev = Device::flex();
    let (pixels, shape) = reference("pixels");
    for dir in ["hf-quickgelu/model.safetensors", "hf-gelu/model.safetensors", "openai-quickgelu/open_clip_model.safetensors"] {
        let load = || ImageEncoder::load(&fixtures().join(dir), None, true, &dev).unwrap();
        let f32_enc = load();
        let want = f32_enc.embed_pixels(pixels.clone(), shape[0]);
        for (precision, bound) in [(Precision::Bf16, 0.999), (Precision::F16, 0.999), (Precision::Int8, 0.995)] {
            let enc = load().with_precision(precision).unwrap();
            assert_eq!(enc.id.precision, precision);
            assert!(!f32_enc.id.same_vectors(&enc.id), "{precision} stores are not mixed with f32 ones");
            let got = enc.embed_pixels(pixels.clone(), shape[0]);
            let d = enc.config.projection_dim;
            let worst = worst_cosine(&want, &got, d);
            eprintln!("{dir} {precision}: worst cosine to f32 {worst:.6} over {} photographs", shape[0]);
            assert!(worst >= bound, "{dir} {precision}: worst cosine {worst}");
            assert!(want != got, "{precision} computed something else than f32");
            for row in got.chunks(d) {
                assert!((row.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-4, "normalised in {precision} too");
            }
        }
    }
    // The bf16 path records no graph: it is refused where gradients are needed.
    let enc = ImageEncoder::load(&fixtures().join("hf-quickgelu/model.safetensors"), None, true, &dev).unwrap();
    assert!(enc.differentiable());
    let enc = enc.with_precision(Precision::Bf16).unwrap();
    assert!(!enc.differentiable());
    let e = enc.with_precision(Precision::F16).unwrap_err().to_string();
    assert!(e.contains("already computes in bf16"), "{e}");
    let enc =
        ImageEncoder::load(&fixtures().join("hf-quickgelu/model.safetensors"), None, true, &dev).unwrap().with_precision(Precision::Int8).unwrap();
    assert!(!enc.differentiable());
    let e = enc.with_precision(Precision::Bf16).unwrap_err().to_string();
    assert!(e.contains("already computes in int8"), "{e}");
}
