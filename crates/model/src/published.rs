//! Published fixed heads as guards: the Stable Diffusion safety checker and
//! Q16's learned prompts. Each becomes a model file like a trained guard's
//! (uncalibrated: temperature 1, threshold 0.5, which is the published
//! decision). Pickles are refused: loading one can run code.

use std::path::Path;

use burn::tensor::Device;
use pairguard_data::EncoderId;
use safetensors::tensor::Dtype;

use crate::error::{Error, Result};
use crate::guard::GuardModel;
use crate::head::{CLIP_SCALE, HeadKind, HeadWeights};
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
    };
    GuardModel::fixed(head, FeatureNorm { kind: NormKind::L2, ..FeatureNorm::identity(d) }, encoder.clone(), 0.5)
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
