//! Published fixed heads as guards: the Stable Diffusion safety checker,
//! Q16's learned prompts, the LAION CLIP-based NSFW detector and Unsafe
//! Diffusion's multi-headed classifier. Each becomes a model file like a trained guard's
//! (uncalibrated: temperature 1, threshold 0.5, which is the published
//! decision). Pickles are refused: loading one can run code.

use std::path::Path;

use burn::tensor::Device;
use pairguard_data::EncoderId;
use safetensors::tensor::Dtype;

use crate::error::{Error, Result};
use crate::guard::GuardModel;
use crate::head::{CLIP_SCALE, Dense, HeadKind, HeadWeights};
use crate::normalize::{FeatureNorm, NormKind};
use pairguard_clip::ImageEncoder;

/// The safety checker's boost of every concept score once a special-care
/// concept fires.
pub const SPECIAL_CARE_ADJUSTMENT: f64 = 0.01;

/// Files whose extension says pickle.
fn refuse_pickle(path: &Path) -> Result<()> {
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    if matches!(ext.as_str(), "p" | "pkl" | "pickle" | "pt" | "pth" | "bin" | "ckpt") {
        return Err(Error::PickleRefused(path.to_path_buf()));
    }
    Ok(())
}

/// A tensor of a safetensors file as f32 (stored as f32, f16 or bf16), with its shape.
fn floats(st: &safetensors::SafeTensors, name: &str, path: &Path) -> Result<(Vec<f32>, Vec<usize>)> {
    let bad = |m: String| Error::ModelFile { path: path.to_path_buf(), message: m };
    let t = st.tensor(name).map_err(|_| bad(format!("no tensor {name:?}")))?;
    let b = t.data();
    let v: Vec<f32> = match t.dtype() {
        Dtype::F32 => b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => b.chunks_exact(2).map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => b.chunks_exact(2).map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        other => return Err(bad(format!("tensor {name:?} is {other:?}; expected a float type"))),
    };
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(bad(format!("tensor {name:?} has a non-finite value at index {i}")));
    }
    Ok((v, t.shape().to_vec()))
}

/// `[rows, d]` row-major as `[d, rows]` columns.
fn columns(rows: &[&[f32]], d: usize) -> Vec<f32> {
    (0..d).flat_map(|i| rows.iter().map(move |r| r[i])).collect()
}

/// The Stable Diffusion safety checker (diffusers'
/// `StableDiffusionSafetyChecker`, as its vectorised `forward_onnx`
/// decides): its own CLIP vision tower, whose embeddings the guard reads
/// (embed the data with `--model` set to the checker), 17 concept and 3
/// special-care embeddings with their thresholds. Returns the guard and the
/// encoder whose embeddings it takes.
pub fn sd_safety_checker(weights: &Path, config: Option<&Path>, device: &Device) -> Result<(GuardModel, ImageEncoder)> {
    refuse_pickle(weights)?;
    let encoder = ImageEncoder::load(weights, config, true, device)?;
    let bytes = std::fs::read(weights).map_err(|e| Error::io(weights, e))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| Error::ModelFile { path: weights.to_path_buf(), message: e.to_string() })?;
    let d = encoder.config.projection_dim;
    let bad = |m: String| Error::ModelFile { path: weights.to_path_buf(), message: m };
    let (concept, cs) = floats(&st, "concept_embeds", weights)?;
    let (special, ss) = floats(&st, "special_care_embeds", weights)?;
    let (concept_thr, ct) = floats(&st, "concept_embeds_weights", weights)?;
    let (special_thr, stt) = floats(&st, "special_care_embeds_weights", weights)?;
    if cs.len() != 2 || ss.len() != 2 || cs[1] != d || ss[1] != d || ct != [cs[0]] || stt != [ss[0]] || cs[0] == 0 {
        return Err(bad(format!(
            "concept_embeds {cs:?}, special_care_embeds {ss:?}, thresholds {ct:?} and {stt:?} do not fit a checker of embedding dimension {d}"
        )));
    }
    let (c, s) = (cs[0], ss[0]);
    let rows: Vec<&[f32]> = concept.chunks(d).chain(special.chunks(d)).collect();
    let head = HeadWeights {
        kind: HeadKind::Concepts { concepts: c, special: s, adjustment: SPECIAL_CARE_ADJUSTMENT, scale: CLIP_SCALE },
        input_dim: d,
        outputs: 1,
        w1: columns(&rows, d),
        b1: concept_thr.into_iter().chain(special_thr).collect(),
        w2: None,
        b2: None,
        middle: Vec::new(),
    };
    let norm = FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) };
    let guard = GuardModel::fixed(head, norm, encoder.id.clone(), 0.5)?;
    Ok((guard, encoder))
}

/// The npy header, checked before `npyz` parses it: its length field
/// against the file's size (the reader allocates the header before reading
/// it, so a file that claims a 4 GB header would take 4 GB), and its text
/// as the flat dictionary numpy writes (`{'descr': ..., 'fortran_order':
/// ..., 'shape': (...), }`): the reader's Python-literal grammar backtracks
/// exponentially on nested braces, so a header of a few hundred nested
/// sets would never finish parsing.
fn check_npy_header(bytes: &[u8]) -> std::result::Result<(), String> {
    let field = match bytes.get(6) {
        Some(1) => bytes.get(8..10).map(|b| (u16::from_le_bytes([b[0], b[1]]) as usize, 10)),
        Some(2 | 3) => bytes.get(8..12).map(|b| (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as usize, 12)),
        _ => None,
    };
    let (len, start) = match field {
        _ if !bytes.starts_with(b"\x93NUMPY") => return Err("not an npy file: no \\x93NUMPY magic".into()),
        None => return Err(format!("not an npy file: format version {:?}", bytes.get(6..8))),
        Some((len, start)) if len > bytes.len() - start => {
            return Err(format!("not an npy file: a header of {len} bytes in a file of {}", bytes.len()));
        }
        Some(field) => field,
    };
    let header = &bytes[start..start + len];
    let count = |c: u8| header.iter().filter(|&&b| b == c).count();
    if !header.is_ascii() || count(b'{') != 1 || count(b'(') > 1 || count(b'[') > 0 {
        return Err("not an npy file numpy writes: its header is not one flat dictionary with one shape tuple".into());
    }
    Ok(())
}

/// Q16's prompt matrix `[2, D]` (row 0 "non inappropriate", row 1
/// "inappropriate", as Q16 stores them) from a `.npy` (float16, 32 or 64)
/// or a safetensors file holding one 2-D tensor, as a prompt head for
/// embeddings of `encoder`: probability of "inappropriate" =
/// softmax(100 x cosine)[1].
pub fn q16(path: &Path, encoder: &EncoderId) -> Result<GuardModel> {
    refuse_pickle(path)?;
    let bad = |m: String| Error::ModelFile { path: path.to_path_buf(), message: m };
    let (values, shape) = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("npy")) {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        check_npy_header(&bytes).map_err(bad)?;
        let npy = npyz::NpyFile::new(&bytes[..]).map_err(|e| bad(format!("not an npy file: {e}")))?;
        let shape: Vec<usize> = npy.shape().iter().map(|&s| s as usize).collect();
        if npy.order() != npyz::Order::C {
            return Err(bad("a Fortran-order array; save it in C order".into()));
        }
        // Before any value is read: the header's shape sizes the buffer.
        if shape != [2, encoder.dim] {
            return Err(bad(format!("prompts of shape {shape:?}; Q16 for these embeddings is [2, {}]", encoder.dim)));
        }
        let values: Vec<f32> = match npy.dtype() {
            npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 2 => {
                npy.into_vec::<half::f16>().map_err(|e| bad(e.to_string()))?.into_iter().map(half::f16::to_f32).collect()
            }
            npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 4 => {
                npy.into_vec::<f32>().map_err(|e| bad(e.to_string()))?
            }
            npyz::DType::Plain(t) if t.type_char() == npyz::TypeChar::Float && t.size_field() == 8 => {
                npy.into_vec::<f64>().map_err(|e| bad(e.to_string()))?.into_iter().map(|v| v as f32).collect()
            }
            other => return Err(bad(format!("dtype {} is not a float type", other.descr()))),
        };
        (values, shape)
    } else {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not an npy or safetensors file: {e}")))?;
        let names = st.names();
        if names.len() != 1 {
            return Err(bad(format!("{} tensors; a Q16 prompt file holds one [2, dim] matrix", names.len())));
        }
        floats(&st, names[0], path)?
    };
    let d = encoder.dim;
    if shape != [2, d] {
        return Err(bad(format!("prompts of shape {shape:?}; Q16 for these embeddings is [2, {d}]")));
    }
    if let Some(i) = values.iter().position(|v| !v.is_finite()) {
        return Err(bad(format!("non-finite value at index {i}")));
    }
    let (safe, unsafe_) = values.split_at(d);
    let head = HeadWeights {
        kind: HeadKind::Prompt { categories: 1, scale: CLIP_SCALE },
        input_dim: d,
        outputs: 1,
        w1: columns(&[unsafe_, safe], d),
        b1: vec![0.0; 2],
        w2: None,
        b2: None,
        middle: Vec::new(),
    };
    GuardModel::fixed(head, FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) }, encoder.clone(), 0.5)
}

/// A safetensors file's tensors, read whole, after the pickle check.
fn open_safetensors(path: &Path) -> Result<Vec<u8>> {
    refuse_pickle(path)?;
    std::fs::read(path).map_err(|e| Error::io(path, e))
}

/// A torch `nn.Linear`'s `weight` `[out, in]` and `bias` `[out]` under
/// `prefix`, as a dense layer `[in, out]`; `inputs` is what the layer
/// before it gives.
fn torch_linear(st: &safetensors::SafeTensors, prefix: &str, inputs: usize, path: &Path) -> Result<Dense> {
    let bad = |m: String| Error::ModelFile { path: path.to_path_buf(), message: m };
    let (w, ws) = floats(st, &format!("{prefix}.weight"), path)?;
    let (b, bs) = floats(st, &format!("{prefix}.bias"), path)?;
    if ws.len() != 2 || ws[1] != inputs || ws[0] == 0 || bs != [ws[0]] {
        return Err(bad(format!("{prefix}.weight {ws:?} and {prefix}.bias {bs:?}: expected [out, {inputs}] and [out]")));
    }
    let rows: Vec<&[f32]> = w.chunks(inputs).collect();
    Ok(Dense { inputs, outputs: ws[0], w: columns(&rows, inputs), b })
}

/// A head of dense layers with ReLU between them.
fn relu_head(layers: Vec<Dense>, outputs: usize, any: bool) -> HeadWeights {
    let mut layers = layers.into_iter();
    let first = layers.next().expect("at least two layers");
    let mut rest: Vec<Dense> = layers.collect();
    let last = rest.pop().expect("at least two layers");
    HeadWeights {
        kind: HeadKind::Relu { hidden: first.outputs, layers: rest.len() + 2, any },
        input_dim: first.inputs,
        outputs,
        w1: first.w,
        b1: first.b,
        w2: Some(last.w),
        b2: Some(last.b),
        middle: rest,
    }
}

/// The LAION CLIP-based NSFW detector (LAION-AI/CLIP-based-NSFW-Detector)
/// from its PyTorch port converted to safetensors: `norm.mean` and
/// `norm.variance` (Keras' Normalization layer), then `linear_1` ...
/// `linear_k` with ReLU between them and a sigmoid after the last (one
/// output): 4 layers for ViT-L/14, 3 for ViT-B/32. It reads unit-length CLIP
/// image embeddings, standardised as the port does, `(x - mean) /
/// (sqrt(variance) + 1e-10)`: the guard's `standardize` normalisation.
pub fn laion_nsfw(path: &Path, encoder: &EncoderId) -> Result<GuardModel> {
    let bytes = open_safetensors(path)?;
    let bad = |m: String| Error::ModelFile { path: path.to_path_buf(), message: m };
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let d = encoder.dim;
    let (mean, ms) = floats(&st, "norm.mean", path)?;
    let (variance, vs) = floats(&st, "norm.variance", path)?;
    // Keras keeps the statistics as [1, d].
    if ms.iter().product::<usize>() != d || vs.iter().product::<usize>() != d || ms.last() != Some(&d) || vs.last() != Some(&d) {
        return Err(bad(format!("norm.mean {ms:?} and norm.variance {vs:?}; the detector for these embeddings normalises {d} dimensions")));
    }
    if let Some(j) = variance.iter().position(|&v| v < 0.0) {
        return Err(bad(format!("norm.variance is {} at dimension {j}; a variance is not negative", variance[j])));
    }
    let mut layers = Vec::new();
    let mut inputs = d;
    while st.names().iter().any(|n| *n == format!("linear_{}.weight", layers.len() + 1)) {
        let layer = torch_linear(&st, &format!("linear_{}", layers.len() + 1), inputs, path)?;
        inputs = layer.outputs;
        layers.push(layer);
    }
    if layers.len() < 2 || inputs != 1 {
        return Err(bad(format!(
            "{} linear layers (linear_1 ...) ending in {inputs} outputs; the detector has at least 2, ending in 1",
            layers.len()
        )));
    }
    let norm = FeatureNorm { kind: NormKind::Standardize, mean, std: variance.iter().map(|v| v.sqrt() + 1e-10).collect() };
    GuardModel::fixed(relu_head(layers, 1, false), norm, encoder.clone(), 0.5)
}

/// The categories of Unsafe Diffusion's multi-headed classifier, one head
/// (`<category>.pt`, converted to `<category>.safetensors`) each.
pub const UNSAFE_DIFFUSION_HEADS: [&str; 5] = ["sexual", "violent", "disturbing", "hateful", "political"];

/// BatchNorm1d's epsilon, as torch defaults it.
const BATCH_NORM_EPS: f32 = 1e-5;

/// Unsafe Diffusion's multi-headed classifier (Qu et al., 2023): per
/// category a projection head `Linear(d, h) -> ReLU -> Dropout ->
/// BatchNorm1d(h) -> Linear(h, 1) -> sigmoid` on open_clip's
/// `encode_image` output, which is not unit length. Read from `dir`, one
/// `<category>.safetensors` per head (keys `0.*`, `3.*`, `4.*` of the
/// `nn.Sequential`). In eval mode the batch norm is an affine map, folded
/// into the last layer; the five heads become one network whose hidden
/// layer is theirs side by side and whose last is block-diagonal. Outputs:
/// "unsafe" (the highest category: flagged by any head), then one per
/// category.
pub fn unsafe_diffusion(dir: &Path, encoder: &EncoderId) -> Result<GuardModel> {
    if encoder.normalized {
        return Err(Error::ModelFile {
            path: dir.to_path_buf(),
            message: format!(
                "Unsafe Diffusion's heads read open_clip's encode_image output as it is, not at unit length; these embeddings of {} are normalised: embed with --no-normalize",
                encoder.model
            ),
        });
    }
    let d = encoder.dim;
    let mut firsts = Vec::new();
    let mut lasts = Vec::new();
    for name in UNSAFE_DIFFUSION_HEADS {
        let path = dir.join(format!("{name}.safetensors"));
        let bytes = open_safetensors(&path)?;
        let bad = |m: String| Error::ModelFile { path: path.clone(), message: m };
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| bad(format!("not a safetensors file: {e}")))?;
        let first = torch_linear(&st, "0", d, &path)?;
        let h = first.outputs;
        let get = |k: &str| -> Result<Vec<f32>> {
            let (v, shape) = floats(&st, &format!("3.{k}"), &path)?;
            if shape != [h] {
                return Err(bad(format!("3.{k} has shape {shape:?}; the batch norm after a layer of {h} has [{h}]")));
            }
            Ok(v)
        };
        let (gamma, beta, mean, var) = (get("weight")?, get("bias")?, get("running_mean")?, get("running_var")?);
        if let Some(j) = var.iter().position(|&v| v < 0.0) {
            return Err(bad(format!("3.running_var is {} at {j}; a variance is not negative", var[j])));
        }
        let last = torch_linear(&st, "4", h, &path)?;
        if last.outputs != 1 {
            return Err(bad(format!("4.weight gives {} outputs; a head gives 1", last.outputs)));
        }
        // w . (gamma (a - mean) / sqrt(var + eps) + beta) + b
        let scale: Vec<f32> = (0..h).map(|j| gamma[j] / (var[j] + BATCH_NORM_EPS).sqrt()).collect();
        let w: Vec<f32> = (0..h).map(|j| last.w[j] * scale[j]).collect();
        let b = last.b[0] + (0..h).map(|j| last.w[j] * (beta[j] - mean[j] * scale[j])).sum::<f32>();
        firsts.push(first);
        lasts.push((w, b));
    }
    let k = UNSAFE_DIFFUSION_HEADS.len();
    let widths: Vec<usize> = firsts.iter().map(|f| f.outputs).collect();
    let hidden: usize = widths.iter().sum();
    // Rows of the side-by-side first layer: each input row joins the heads' rows.
    let w1: Vec<f32> = (0..d).flat_map(|i| firsts.iter().flat_map(move |f| f.w[i * f.outputs..(i + 1) * f.outputs].iter().copied())).collect();
    let b1: Vec<f32> = firsts.iter().flat_map(|f| f.b.iter().copied()).collect();
    let mut w2 = vec![0.0f32; hidden * k];
    let mut row = 0;
    for (c, (w, _)) in lasts.iter().enumerate() {
        for (j, v) in w.iter().enumerate() {
            w2[(row + j) * k + c] = *v;
        }
        row += w.len();
    }
    let first = Dense { inputs: d, outputs: hidden, w: w1, b: b1 };
    let last = Dense { inputs: hidden, outputs: k, w: w2, b: lasts.iter().map(|(_, b)| *b).collect() };
    let categories: Vec<String> = UNSAFE_DIFFUSION_HEADS.iter().map(|s| s.to_string()).collect();
    GuardModel::untrained(relu_head(vec![first, last], 1 + k, true), FeatureNorm::identity(d), encoder.clone(), categories, 0.5)
}

#[cfg(test)]
mod tests {
    #[test]
    fn npy_headers_too_long_or_nested_are_refused_before_they_are_parsed() {
        let mut v3 = b"\x93NUMPY\x03\x00".to_vec();
        v3.extend_from_slice(&0x7b27_0076u32.to_le_bytes());
        v3.extend_from_slice(b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }");
        let e = super::check_npy_header(&v3).unwrap_err();
        assert!(e.contains("a header of 2066153590 bytes in a file of 71"), "{e}");
        assert!(super::check_npy_header(b"PK\x03\x04").unwrap_err().contains("no \\x93NUMPY magic"));
        let v1 = |header: &str| {
            let mut v = b"\x93NUMPY\x01\x00".to_vec();
            v.extend_from_slice(&(header.len() as u16).to_le_bytes());
            v.extend_from_slice(header.as_bytes());
            v
        };
        super::check_npy_header(&v1("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 4), }\n")).unwrap();
        let nested = format!("{{'descr': {}'<f4'{}, 'shape': (2, 4), }}\n", "{".repeat(300), "}".repeat(300));
        assert!(super::check_npy_header(&v1(&nested)).unwrap_err().contains("one flat dictionary"));
    }
}
