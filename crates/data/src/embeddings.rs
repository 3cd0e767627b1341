//! Embedding stores: vectors in a safetensors file (tensor `embeddings`,
//! f32 `[n, dim]`) plus a JSON index beside it with the sample ids and the
//! identity of the encoder that produced them. numpy reads the former with
//! `safetensors.numpy.load_file`, pandas the latter with `read_json`.
//! Stores from different encoders must never be mixed, so every consumer
//! compares [`EncoderId`]s.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::tensor::{Dtype, TensorView};
use serde::{Deserialize, Serialize};

use crate::{DataError, Result};
use pairguard_run::{sha256_bytes, write_atomic};

/// Tensor name inside the safetensors file.
pub const TENSOR_NAME: &str = "embeddings";

/// The arithmetic an encoder computes in. Reduced precision moves every
/// vector a little (cosine about 0.999 to f32), so it is part of an
/// encoder's identity: stores of different precision are never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, strum::Display, strum::EnumString, strum::VariantNames)]
#[serde(rename_all = "lowercase")]
#[strum(serialize_all = "lowercase")]
pub enum Precision {
    #[default]
    F32,
    /// bfloat16 products with f32 accumulation; on CPUs with AVX-512 BF16
    /// these are the CPU's own bf16 dot products.
    Bf16,
    /// IEEE half precision, for GPUs.
    F16,
    /// int8 products with i32 accumulation (weights per output column,
    /// inputs per token); on CPUs with AVX-512 VNNI these are the CPU's own
    /// int8 dot products.
    Int8,
}

/// What produced a set of embeddings. The model name and revision say where
/// the weights came from; identity is what determines the vectors: the
/// weights' hash, the architecture, the preprocessing, the dimension, the
/// normalisation and the precision. The same weights named by another path
/// are the same encoder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncoderId {
    /// Hub repo id, local path, or `synthetic`.
    pub model: String,
    pub revision: Option<String>,
    /// SHA-256 of the weights file (or of the generator config).
    pub weights_sha256: String,
    /// The architecture's config, serialised.
    #[serde(default)]
    pub architecture: String,
    /// Version tag of the preprocessing pipeline.
    pub preprocess: String,
    pub dim: usize,
    /// Whether vectors are L2-normalised.
    pub normalized: bool,
    /// Stores from before precision was recorded were computed in f32.
    #[serde(default)]
    pub precision: Precision,
}

impl EncoderId {
    /// Whether two identities produce the same vectors (see the type's docs).
    pub fn same_vectors(&self, other: &EncoderId) -> bool {
        (&self.weights_sha256, &self.architecture, &self.preprocess, self.dim, self.normalized, self.precision)
            == (&other.weights_sha256, &other.architecture, &other.preprocess, other.dim, other.normalized, other.precision)
    }

    /// Fails with both identities spelled out when they would give different vectors.
    pub fn ensure_matches(&self, other: &EncoderId, what: &str) -> Result<()> {
        if self.same_vectors(other) {
            return Ok(());
        }
        Err(DataError::EncoderMismatch(format!(
            "encoder mismatch for {what}: expected {} (weights {}, preprocess {}, dim {}, normalized {}, precision {}), found {} (weights {}, preprocess {}, dim {}, normalized {}, precision {}){}",
            self.model,
            short(&self.weights_sha256),
            self.preprocess,
            self.dim,
            self.normalized,
            self.precision,
            other.model,
            short(&other.weights_sha256),
            other.preprocess,
            other.dim,
            other.normalized,
            other.precision,
            if self.architecture != other.architecture { "; the architectures differ" } else { "" }
        )))
    }
}

fn short(h: &str) -> &str {
    &h[..h.len().min(12)]
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Index {
    encoder: EncoderId,
    count: usize,
    dim: usize,
    /// SHA-256 of the safetensors file, to detect a mismatched pair of files.
    tensor_sha256: String,
    ids: Vec<String>,
}

/// Embeddings for a set of samples, addressed by sample id.
#[derive(Debug, Clone, PartialEq)]
pub struct EmbeddingStore {
    pub encoder: EncoderId,
    pub ids: Vec<String>,
    /// Row-major `[ids.len(), encoder.dim]`.
    pub vectors: Vec<f32>,
    position: HashMap<String, usize>,
}

impl EmbeddingStore {
    pub fn new(encoder: EncoderId, ids: Vec<String>, vectors: Vec<f32>) -> Result<Self> {
        let dim = encoder.dim;
        if dim == 0 || vectors.len() != ids.len() * dim {
            return Err(DataError::Store(format!("{} ids and {} values do not form [n, {dim}]", ids.len(), vectors.len())));
        }
        let mut position = HashMap::with_capacity(ids.len());
        for (i, id) in ids.iter().enumerate() {
            if position.insert(id.clone(), i).is_some() {
                return Err(DataError::Store(format!("duplicate id {id:?}")));
            }
        }
        for (i, row) in vectors.chunks(dim).enumerate() {
            if let Some(j) = row.iter().position(|v| !v.is_finite()) {
                return Err(DataError::Store(format!("sample {:?} has a non-finite value ({}) at dimension {j}", ids[i], row[j])));
            }
        }
        Ok(EmbeddingStore { encoder, ids, vectors, position })
    }

    pub fn dim(&self) -> usize {
        self.encoder.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn get(&self, id: &str) -> Option<&[f32]> {
        let d = self.dim();
        self.position.get(id).map(|&i| &self.vectors[i * d..(i + 1) * d])
    }

    /// The JSON index that accompanies a safetensors file.
    pub fn index_path(tensor_path: &Path) -> PathBuf {
        tensor_path.with_extension("json")
    }

    /// Writes both files atomically (tensor first, index last, so an index
    /// always describes a complete tensor file).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes: Vec<u8> = self.vectors.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = TensorView::new(Dtype::F32, vec![self.len(), self.dim()], &bytes).map_err(|e| DataError::parse(path, e))?;
        let meta: HashMap<String, String> = [("encoder".to_string(), serde_json::to_string(&self.encoder).expect("serialisable"))].into();
        let file = safetensors::serialize([(TENSOR_NAME, view)], Some(meta)).map_err(|e| DataError::parse(path, e))?;
        write_atomic(path, &file)?;
        let index =
            Index { encoder: self.encoder.clone(), count: self.len(), dim: self.dim(), tensor_sha256: sha256_bytes(&file), ids: self.ids.clone() };
        let json = serde_json::to_vec_pretty(&index).expect("serialisable");
        Ok(write_atomic(&Self::index_path(path), &json)?)
    }

    pub fn load(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| DataError::io(path, e))?;
        let index_path = Self::index_path(path);
        let index_text = std::fs::read_to_string(&index_path).map_err(|e| DataError::io(&index_path, e))?;
        let index: Index = serde_json::from_str(&index_text).map_err(|e| DataError::parse(&index_path, e))?;
        if sha256_bytes(&bytes) != index.tensor_sha256 {
            return Err(DataError::parse(path, format!("contents do not match the hash recorded in {}", index_path.display())));
        }
        let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| DataError::parse(path, e))?;
        let t = st.tensor(TENSOR_NAME).map_err(|_| DataError::parse(path, format!("no tensor named {TENSOR_NAME:?}")))?;
        if t.dtype() != Dtype::F32 || t.shape() != [index.count, index.dim] {
            return Err(DataError::parse(
                path,
                format!("tensor {TENSOR_NAME:?} is {:?} {:?}, the index says F32 [{}, {}]", t.dtype(), t.shape(), index.count, index.dim),
            ));
        }
        if index.encoder.dim != index.dim || index.ids.len() != index.count {
            return Err(DataError::parse(&index_path, "dimension or id count disagrees with the header"));
        }
        let vectors = t.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().expect("4 bytes"))).collect();
        Self::new(index.encoder, index.ids, vectors).map_err(|e| DataError::parse(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc(dim: usize) -> EncoderId {
        EncoderId {
            model: "test".into(),
            revision: None,
            weights_sha256: "abc".into(),
            architecture: String::new(),
            preprocess: "none".into(),
            dim,
            normalized: false,
            precision: Default::default(),
        }
    }

    #[test]
    fn round_trips_and_detects_tampering() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("e.safetensors");
        let store = EmbeddingStore::new(enc(2), vec!["a".into(), "b".into()], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
        store.save(&path).unwrap();
        let back = EmbeddingStore::load(&path).unwrap();
        assert_eq!(back, store);
        assert_eq!(back.get("b"), Some(&[3.0, 4.0][..]));
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 1] ^= 1;
        std::fs::write(&path, bytes).unwrap();
        assert!(EmbeddingStore::load(&path).unwrap_err().to_string().contains("do not match"));
    }

    #[test]
    fn nan_and_shape_errors_name_the_sample() {
        let e = EmbeddingStore::new(enc(2), vec!["a".into(), "b".into()], vec![1.0, 2.0, f32::NAN, 4.0]).unwrap_err();
        assert!(e.to_string().contains("\"b\"") && e.to_string().contains("non-finite"), "{e}");
        assert!(EmbeddingStore::new(enc(3), vec!["a".into()], vec![1.0, 2.0]).is_err());
    }

    #[test]
    fn encoder_mismatch_is_explained() {
        let mut other = enc(2);
        other.weights_sha256 = "def".into();
        let e = enc(2).ensure_matches(&other, "store x").unwrap_err();
        assert!(e.to_string().contains("encoder mismatch for store x"), "{e}");
        // The same weights under another name or path are the same encoder.
        let renamed = EncoderId { model: "/abs/path/model.safetensors".into(), revision: Some("r".into()), ..enc(2) };
        enc(2).ensure_matches(&renamed, "store y").unwrap();
        let other_arch = EncoderId { architecture: "{\"layers\":3}".into(), ..enc(2) };
        assert!(enc(2).ensure_matches(&other_arch, "z").unwrap_err().to_string().contains("architectures differ"));
        // Reduced precision gives other vectors, and says so.
        let bf16 = EncoderId { precision: Precision::Bf16, ..enc(2) };
        let e = enc(2).ensure_matches(&bf16, "store w").unwrap_err().to_string();
        assert!(e.contains("precision f32") && e.contains("precision bf16"), "{e}");
    }

    #[test]
    fn precision_defaults_to_f32_in_older_indexes_and_round_trips() {
        let old = r#"{"model":"m","revision":null,"weights_sha256":"abc","preprocess":"p","dim":2,"normalized":true}"#;
        assert_eq!(serde_json::from_str::<EncoderId>(old).unwrap().precision, Precision::F32);
        let id = EncoderId { precision: Precision::Bf16, ..enc(2) };
        let json = serde_json::to_string(&id).unwrap();
        assert!(json.contains(r#""precision":"bf16""#), "{json}");
        assert_eq!(serde_json::from_str::<EncoderId>(&json).unwrap(), id);
        assert_eq!("f16".parse::<Precision>().unwrap(), Precision::F16);
        assert!("fp8".parse::<Precision>().is_err());
    }
}
