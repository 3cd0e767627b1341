//! ONNX export, built directly as ONNX protobuf (opset 17, IR 8) from the
//! model's own weights, so what runs elsewhere is exactly what was trained:
//!
//! * the head alone: `embedding [batch, D]` -> `probabilities [batch, O]`,
//!   normalisation and temperature included;
//! * the whole pipeline: `pixel_values [batch, 3, S, S]` (CLIP-normalised,
//!   as [`pairguard_clip::Preprocessor::pixels`] makes them) -> the same
//!   probabilities, with the CLIP vision transformer in front.
//!
//! Column 0 is P(unsafe) after temperature scaling; further columns are the
//! per-category probabilities of multi-label heads. A second output,
//! `verdict [batch]` (bool), is column 0 at or above the guard's threshold.
//! The model's metadata (`metadata_props`, keys under `pairguard.`) says
//! what a deployer needs without the JSON card: the threshold and its rule,
//! the temperature, the output and category names, the encoder's identity,
//! the preprocessing (size, resize rule, mean, std) and the format version.
//!
//! With [`Precision::F16`] the encoder's weights and products are float16
//! (inputs and outputs stay float32); LayerNorm, the embedding's
//! normalisation and the head compute in float32, where float16's range
//! and precision would move the verdict. With [`Precision::Int8`] the
//! transformer's products and the patch embedding are `MatMulInteger` on
//! int8 weights per column and inputs quantised per tensor at run time
//! (see `Graph::linear_int8`): an image's probabilities then depend
//! slightly on the other images of its batch, as with onnxruntime's own
//! `quantize_dynamic`.
//!
//! Every operator is in the standard domain of opset 17 (LayerNorm is
//! opset 17's `LayerNormalization`, GELU written out in primitive
//! operators), so any runtime that speaks opset 17 runs the graphs. The protobuf types ([`pb`]) are generated
//! from the ONNX specification (see `tools/onnx-proto`).

use prost::Message;

#[allow(clippy::all, missing_debug_implementations)]
mod pb;

use burn::nn::{LayerNorm, Linear};

use crate::error::Result;
use crate::guard::GuardModel;
use crate::head::{HeadKind, prompt_columns};
use crate::normalize::NormKind;
use pairguard_clip::config::Activation;
use pairguard_clip::host::QuantizedColumns;
use pairguard_clip::vision::{ClipVisionEmbeddings, VisionOps};
use pairguard_clip::{ImageEncoder, VisionConfig};
use pairguard_data::Precision;

pub const OPSET: i64 = 17;

/// The version of the metadata keys and outputs described above.
pub const FORMAT_VERSION: &str = "1";

/// A small builder over the protobuf graph.
struct Graph {
    g: pb::GraphProto,
    counter: usize,
    /// Whether the values being emitted are float16 (weights and constants
    /// are stored as such).
    half: bool,
    /// Whether the encoder's products are int8 (see [`Graph::product`]).
    int8: bool,
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: Some(name.into()), r#type: Some(pb::attribute_proto::AttributeType::Int as i32), i: Some(v), ..Default::default() }
}

fn attr_float(name: &str, v: f32) -> pb::AttributeProto {
    pb::AttributeProto { name: Some(name.into()), r#type: Some(pb::attribute_proto::AttributeType::Float as i32), f: Some(v), ..Default::default() }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto {
        name: Some(name.into()),
        r#type: Some(pb::attribute_proto::AttributeType::Ints as i32),
        ints: v.to_vec(),
        ..Default::default()
    }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{Dimension, dimension::Value};
    let dim = dims
        .iter()
        .map(|d| Dimension {
            value: Some(match d {
                Some(v) => Value::DimValue(*v),
                None => Value::DimParam("batch".into()),
            }),
            ..Default::default()
        })
        .collect();
    pb::ValueInfoProto {
        name: Some(name.into()),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: Some(pb::tensor_proto::DataType::Float as i32),
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Graph {
    fn new(name: &str) -> Self {
        Graph { g: pb::GraphProto { name: Some(name.into()), ..Default::default() }, counter: 0, half: false, int8: false }
    }

    /// Converts `x` to float16 (`half`) or float32 and emits in that type from here.
    fn cast(&mut self, x: &str, half: bool) -> String {
        self.half = half;
        let to = if half { pb::tensor_proto::DataType::Float16 } else { pb::tensor_proto::DataType::Float };
        self.op("Cast", &[x], vec![attr_int("to", to as i64)])
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    /// A float initializer, float16 in a half graph.
    fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "initializer {name}");
        let (data_type, raw_data) = if self.half {
            (pb::tensor_proto::DataType::Float16, data.iter().flat_map(|&v| half::f16::from_f32(v).to_le_bytes()).collect())
        } else {
            (pb::tensor_proto::DataType::Float, data.iter().flat_map(|v| v.to_le_bytes()).collect())
        };
        self.init_raw(name, dims, data_type, raw_data)
    }

    /// An initializer of `data_type`, its values little-endian in `bytes`.
    fn init_raw(&mut self, name: &str, dims: &[usize], data_type: pb::tensor_proto::DataType, bytes: Vec<u8>) -> String {
        let name = self.fresh(name);
        self.g.initializer.push(pb::TensorProto {
            name: Some(name.clone()),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: Some(data_type as i32),
            raw_data: Some(bytes),
            ..Default::default()
        });
        name
    }

    fn init_i64(&mut self, name: &str, data: &[i64]) -> String {
        self.init_raw(name, &[data.len()], pb::tensor_proto::DataType::Int64, data.iter().flat_map(|v| v.to_le_bytes()).collect())
    }

    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.init_f32(name, &[], &[v])
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        let [out] = self.op_outputs(op, inputs, attrs);
        out
    }

    /// An operator with `N` outputs.
    fn op_outputs<const N: usize>(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> [String; N] {
        let outputs: [String; N] = std::array::from_fn(|_| self.fresh(&op.to_ascii_lowercase()));
        self.g.node.push(pb::NodeProto {
            op_type: Some(op.into()),
            name: Some(outputs[0].clone()),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: outputs.to_vec(),
            attribute: attrs,
            ..Default::default()
        });
        outputs
    }

    fn bin(&mut self, op: &str, a: &str, b: &str) -> String {
        self.op(op, &[a, b], vec![])
    }

    /// `x @ W + b` with W stored `[in, out]`.
    fn linear(&mut self, x: &str, w: &[f32], b: Option<&[f32]>, din: usize, dout: usize, name: &str) -> String {
        let wn = self.init_f32(&format!("{name}.weight"), &[din, dout], w);
        let y = self.bin("MatMul", x, &wn);
        match b {
            Some(b) => {
                let bn = self.init_f32(&format!("{name}.bias"), &[dout], b);
                self.bin("Add", &y, &bn)
            }
            None => y,
        }
    }

    /// An encoder product `x [.., din] . w [din, dout] + b`: in int8 when
    /// the graph is int8 (see [`Self::linear_int8`]), else as [`Self::linear`].
    fn product(&mut self, x: &str, w: &[f32], b: Option<&[f32]>, din: usize, dout: usize, name: &str) -> String {
        if self.int8 { self.linear_int8(x, w, b, din, dout, name) } else { self.linear(x, w, b, din, dout, name) }
    }

    /// `x . w + b` with int8 operands and int32 accumulation, in the form
    /// onnxruntime fuses into one `DynamicQuantizeMatMul` (its integer
    /// kernel, quantisation and scaling in one pass): `x` quantised at run
    /// time over the whole tensor (`DynamicQuantizeLinear`, uint8 with a zero
    /// point), the weights per column as the CPU's int8 path holds them
    /// ([`QuantizedColumns`], symmetric int8), `MatMulInteger`, then the
    /// product of the two scales and the bias.
    ///
    /// The CPU path quantises each token over its own range instead, which
    /// keeps an image's numbers independent of its batch; written in ONNX
    /// operators that takes a dozen passes over each input and output, and
    /// ran the graph at 0.55x the speed of this form (docs/benchmarks.md).
    fn linear_int8(&mut self, x: &str, w: &[f32], b: Option<&[f32]>, din: usize, dout: usize, name: &str) -> String {
        use pb::tensor_proto::DataType;
        let q = QuantizedColumns::of(w, dout);
        let wq = self.init_raw(&format!("{name}.weight_int8"), &[din, dout], DataType::Int8, q.values.iter().map(|&v| v as u8).collect());
        let scales = self.init_f32(&format!("{name}.weight_scales"), &[dout], &q.scales);
        let [xq, x_scale, x_zero] = self.op_outputs("DynamicQuantizeLinear", &[x], vec![]);
        let acc = self.op("MatMulInteger", &[&xq, &wq, &x_zero], vec![]);
        let acc = self.op("Cast", &[&acc], vec![attr_int("to", DataType::Float as i64)]);
        let scale = self.bin("Mul", &x_scale, &scales);
        let y = self.bin("Mul", &acc, &scale);
        match b {
            Some(b) => {
                let bn = self.init_f32(&format!("{name}.bias"), &[dout], b);
                self.bin("Add", &y, &bn)
            }
            None => y,
        }
    }

    /// L2-normalises the last axis of a 2-D tensor.
    fn l2_normalize(&mut self, x: &str) -> String {
        let sq = self.bin("Mul", x, x);
        let axes = self.init_i64("axes", &[-1]);
        let sum = self.op("ReduceSum", &[&sq, &axes], vec![attr_int("keepdims", 1)]);
        let norm = self.op("Sqrt", &[&sum], vec![]);
        let eps = self.scalar("eps", 1e-12);
        let norm = self.bin("Max", &norm, &eps);
        self.bin("Div", x, &norm)
    }

    /// Opset 17's `LayerNormalization` over the last axis, which runtimes
    /// run as one kernel (written out in primitive operators, onnxruntime
    /// made six passes of it).
    fn layer_norm(&mut self, x: &str, w: &[f32], b: &[f32], eps: f64, name: &str) -> String {
        let wn = self.init_f32(&format!("{name}.weight"), &[w.len()], w);
        let bn = self.init_f32(&format!("{name}.bias"), &[b.len()], b);
        self.op("LayerNormalization", &[x, &wn, &bn], vec![attr_int("axis", -1), attr_float("epsilon", eps as f32)])
    }

    /// Exact GELU: 0.5 x (1 + erf(x / sqrt 2)).
    fn gelu(&mut self, x: &str) -> String {
        let r2 = self.scalar("sqrt2", std::f32::consts::SQRT_2);
        let d = self.bin("Div", x, &r2);
        let e = self.op("Erf", &[&d], vec![]);
        let one = self.scalar("one", 1.0);
        let e = self.bin("Add", &e, &one);
        let y = self.bin("Mul", x, &e);
        let half = self.scalar("half", 0.5);
        self.bin("Mul", &y, &half)
    }

    fn quick_gelu(&mut self, x: &str) -> String {
        let c = self.scalar("quick_gelu", 1.702);
        let s = self.bin("Mul", x, &c);
        let s = self.op("Sigmoid", &[&s], vec![]);
        self.bin("Mul", x, &s)
    }

    /// Names the last node's output `probabilities`, adds `verdict`, and
    /// writes the model with its metadata.
    fn finish(mut self, input: pb::ValueInfoProto, output: &str, m: &GuardModel, meta: Vec<(String, String)>, doc: &str) -> Vec<u8> {
        let last = self.g.node.last_mut().expect("graph has nodes");
        assert_eq!(last.output[0], output);
        last.output[0] = "probabilities".into();
        let column = self.init_i64("unsafe_column", &[0]);
        let p = self.op("Gather", &["probabilities", &column], vec![attr_int("axis", 1)]);
        let axes = self.init_i64("axes", &[1]);
        let p = self.op("Squeeze", &[&p, &axes], vec![]);
        let threshold = self.scalar("threshold", m.card.threshold as f32);
        self.bin("GreaterOrEqual", &p, &threshold);
        self.g.node.last_mut().expect("the verdict node").output[0] = "verdict".into();
        self.g.input.push(input);
        self.g.output.push(value_info("probabilities", &[None, Some(m.head.outputs as i64)]));
        let mut verdict = value_info("verdict", &[None]);
        if let Some(pb::type_proto::Value::TensorType(t)) = verdict.r#type.as_mut().and_then(|t| t.value.as_mut()) {
            t.elem_type = Some(pb::tensor_proto::DataType::Bool as i32);
        }
        self.g.output.push(verdict);
        let model = pb::ModelProto {
            ir_version: Some(8),
            opset_import: vec![pb::OperatorSetIdProto { domain: Some(String::new()), version: Some(OPSET) }],
            producer_name: Some("pairguard".into()),
            producer_version: Some(env!("CARGO_PKG_VERSION").into()),
            doc_string: Some(doc.into()),
            graph: Some(self.g),
            metadata_props: meta.into_iter().map(|(key, value)| pb::StringStringEntryProto { key: Some(key), value: Some(value) }).collect(),
            ..Default::default()
        };
        model.encode_to_vec()
    }
}

/// The metadata every export carries; see the module documentation.
fn metadata(m: &GuardModel, input: &str, graph_precision: Precision) -> Vec<(String, String)> {
    let card = &m.card;
    let mut meta = vec![
        ("format_version", FORMAT_VERSION.to_string()),
        ("input", input.to_string()),
        ("outputs", json(&card.outputs)),
        ("categories", json(&card.categories)),
        ("threshold", card.threshold.to_string()),
        ("threshold_rule", json(&card.threshold_rule)),
        ("verdict", "verdict = probabilities[:, 0] >= threshold".to_string()),
        ("temperature", card.temperature.to_string()),
        ("head", json(&card.head)),
        ("encoder", json(&card.encoder)),
        ("graph_precision", graph_precision.to_string()),
        ("preprocess", card.encoder.preprocess.clone()),
    ];
    if let Some(pre) = pairguard_clip::Preprocessor::from_version(&card.encoder.preprocess) {
        meta.extend([
            ("preprocess.size", pre.size.to_string()),
            ("preprocess.resize", pre.resize_rule()),
            ("preprocess.mean", json(&pre.mean)),
            ("preprocess.std", json(&pre.std)),
            ("preprocess.scale", "pixel / 255, then (x - mean) / std per channel, NCHW".to_string()),
        ]);
    }
    meta.into_iter().map(|(k, v)| (format!("pairguard.{k}"), v)).collect()
}

fn json<T: serde::Serialize + ?Sized>(v: &T) -> String {
    serde_json::to_string(v).expect("card values serialise")
}

/// Appends normalisation, head, temperature and sigmoid to `x` ([batch, D]).
fn head_graph(g: &mut Graph, x: &str, m: &GuardModel) -> String {
    let h = &m.head;
    let d = h.input_dim;
    let mut x = x.to_string();
    if m.norm.kind != NormKind::None {
        x = g.l2_normalize(&x);
    }
    if m.norm.kind == NormKind::Standardize {
        let mean = g.init_f32("norm.mean", &[d], &m.norm.mean);
        let std = g.init_f32("norm.std", &[d], &m.norm.std);
        x = g.bin("Sub", &x, &mean);
        x = g.bin("Div", &x, &std);
    }
    let o = h.outputs;
    let logits = match h.kind {
        HeadKind::Linear => g.linear(&x, &h.w1, Some(&h.b1), d, o, "head.linear"),
        HeadKind::Mlp { hidden, .. } => {
            let z = g.linear(&x, &h.w1, Some(&h.b1), d, hidden, "head.fc1");
            let a = g.gelu(&z);
            let w2 = h.w2.as_ref().expect("MLP has w2");
            g.linear(&a, w2, h.b2.as_deref(), hidden, o, "head.fc2")
        }
        HeadKind::Relu { hidden, any, .. } => {
            let z = g.linear(&x, &h.w1, Some(&h.b1), d, hidden, "head.layer0");
            let mut a = g.op("Relu", &[&z], vec![]);
            for (i, l) in h.middle.iter().enumerate() {
                let z = g.linear(&a, &l.w, Some(&l.b), l.inputs, l.outputs, &format!("head.layer{}", i + 1));
                a = g.op("Relu", &[&z], vec![]);
            }
            let last = h.kind.last_layer_outputs(o);
            let (w2, inputs) = (h.w2.as_ref().expect("a ReLU network has a last layer"), h.middle.last().map_or(hidden, |l| l.outputs));
            let z = g.linear(&a, w2, h.b2.as_deref(), inputs, last, &format!("head.layer{}", h.middle.len() + 1));
            if any {
                let top = g.op("ReduceMax", &[&z], vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)]);
                g.op("Concat", &[&top, &z], vec![attr_int("axis", 1)])
            } else {
                z
            }
        }
        HeadKind::Prompt { categories: k, scale } => {
            // Class logits with the columns' norms and the scale folded in.
            let z = g.linear(&x, &prompt_columns(&h.w1, d, 2 * k, scale), Some(&h.b1), d, 2 * k, "head.prompts");
            let half = |g: &mut Graph, from: i64| {
                let (start, end, axes) = (g.init_i64("starts", &[from]), g.init_i64("ends", &[from + k as i64]), g.init_i64("axes", &[1]));
                g.op("Slice", &[&z, &start, &end, &axes], vec![])
            };
            let u = half(g, 0);
            let s = half(g, k as i64);
            let lse = |g: &mut Graph, t: &str| g.op("ReduceLogSumExp", &[t], vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)]);
            let (lu, ls) = (lse(g, &u), lse(g, &s));
            let unsafe_ = g.bin("Sub", &lu, &ls);
            if o == 1 {
                unsafe_
            } else {
                let per_category = g.bin("Sub", &u, &s);
                g.op("Concat", &[&unsafe_, &per_category], vec![attr_int("axis", 1)])
            }
        }
        HeadKind::Concepts { concepts, special, adjustment, scale } => {
            // Scores: cosines less the thresholds.
            let w = concepts + special;
            let negated: Vec<f32> = h.b1.iter().map(|t| -t).collect();
            let scores = g.linear(&x, &prompt_columns(&h.w1, d, w, 1.0), Some(&negated), d, w, "head.concepts");
            let part = |g: &mut Graph, from: usize, len: usize| {
                let (start, end, axes) = (g.init_i64("starts", &[from as i64]), g.init_i64("ends", &[(from + len) as i64]), g.init_i64("axes", &[1]));
                let p = g.op("Slice", &[&scores, &start, &end, &axes], vec![]);
                g.op("ReduceMax", &[&p], vec![attr_ints("axes", &[1]), attr_int("keepdims", 1)])
            };
            let mut z = part(g, 0, concepts);
            if special > 0 {
                let cared = part(g, concepts, special);
                let zero = g.scalar("zero", 0.0);
                let cared = g.bin("Greater", &cared, &zero);
                let cared = g.op("Cast", &[&cared], vec![attr_int("to", 1)]);
                let step = g.scalar("special_care_adjustment", adjustment as f32);
                let raise = g.bin("Mul", &cared, &step);
                z = g.bin("Add", &z, &raise);
            }
            let s = g.scalar("concept_scale", scale as f32);
            g.bin("Mul", &z, &s)
        }
    };
    // Temperature applies to the "unsafe" output only.
    let mut scale = vec![1.0f32; o];
    scale[0] = (1.0 / m.card.temperature) as f32;
    let s = g.init_f32("temperature_scale", &[o], &scale);
    let scaled = g.bin("Mul", &logits, &s);
    g.op("Sigmoid", &[&scaled], vec![])
}

/// The head alone: embeddings in, probabilities out.
pub fn export_head(m: &GuardModel) -> Vec<u8> {
    let mut g = Graph::new("pairguard_head");
    let out = head_graph(&mut g, "embedding", m);
    let doc = format!("pairguard guard head; outputs {:?}; threshold {}", m.card.outputs, m.card.threshold);
    g.finish(value_info("embedding", &[None, Some(m.head.input_dim as i64)]), &out, m, metadata(m, "embedding", Precision::F32), &doc)
}

/// A parameter's values on the host, row-major.
fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
}

/// The encoder as graph nodes: the encoder's own forward pass
/// ([`pairguard_clip::ClipVisionModelWithProjection::run`]) run on node names.
struct Emit<'a> {
    g: &'a mut Graph,
    cfg: &'a VisionConfig,
    counter: usize,
}

impl Emit<'_> {
    fn name(&mut self, what: &str) -> String {
        self.counter += 1;
        format!("encoder.{what}{}", self.counter)
    }

    /// A `Linear` as an encoder product (int8 in an int8 graph) or, with
    /// `quantised` false, always as a float product.
    fn module_product(&mut self, x: String, l: &Linear, quantised: bool) -> String {
        let name = self.name("linear");
        let [din, dout] = l.weight.val().dims();
        let bias = l.bias.as_ref().map(|b| host(b.val()));
        let w = host(l.weight.val());
        if quantised { self.g.product(&x, &w, bias.as_deref(), din, dout, &name) } else { self.g.linear(&x, &w, bias.as_deref(), din, dout, &name) }
    }
}

impl VisionOps for Emit<'_> {
    type Pixels = String;
    type Tokens = String;
    type Embeddings = String;

    fn embed(&mut self, pixels: String, e: &ClipVisionEmbeddings) -> String {
        let g = &mut *self.g;
        let (s, p, h) = (self.cfg.image_size, self.cfg.patch_size, self.cfg.hidden_size);
        let n = s / p;
        // The patch convolution (stride = kernel) as patchify + matmul:
        // [B,3,S,S] -> [B,3,n,P,n,P] -> [B,n,n,3,P,P] -> [B,n*n,3PP] @ [3PP, H].
        let shape1 = g.init_i64("shape", &[-1, 3, n as i64, p as i64, n as i64, p as i64]);
        let x = g.op("Reshape", &[&pixels, &shape1], vec![]);
        let x = g.op("Transpose", &[&x], vec![attr_ints("perm", &[0, 2, 4, 1, 3, 5])]);
        let shape2 = g.init_i64("shape", &[-1, (n * n) as i64, (3 * p * p) as i64]);
        let x = g.op("Reshape", &[&x, &shape2], vec![]);
        let kernel = host(e.patch_embedding.weight.val().reshape([h, 3 * p * p]).transpose());
        // int8 in an int8 graph, where the CPU's int8 path keeps it bf16:
        // the pixels are 8-bit values scaled per channel, which quantise over
        // the tensor with little loss, and float32 here cost the graph about
        // 7% of its speed.
        let x = g.product(&x, &kernel, None, 3 * p * p, h, "embeddings.patch_embedding");
        // The class token, broadcast to the batch: Expand([1,1,H], [B,1,H]).
        let cls = g.init_f32("embeddings.class_embedding", &[1, 1, h], &host(e.class_embedding.val()));
        let pshape = g.op("Shape", &[&pixels], vec![]);
        let zero = g.init_i64("index", &[0]);
        let batch = g.op("Gather", &[&pshape, &zero], vec![attr_int("axis", 0)]);
        let rest = g.init_i64("shape", &[1, h as i64]);
        let cls_shape = g.op("Concat", &[&batch, &rest], vec![attr_int("axis", 0)]);
        let cls = g.op("Expand", &[&cls, &cls_shape], vec![]);
        let x = g.op("Concat", &[&cls, &x], vec![attr_int("axis", 1)]);
        let pos = g.init_f32("embeddings.position_embedding", &[n * n + 1, h], &host(e.position_embedding.weight.val()));
        g.bin("Add", &x, &pos)
    }

    fn layer_norm(&mut self, x: String, n: &LayerNorm) -> String {
        let name = self.name("layer_norm");
        let beta = n.beta.as_ref().map(|b| host(b.val())).unwrap_or_else(|| vec![0.0; n.gamma.val().dims()[0]]);
        // In float32 in a float16 graph: the variance of CLIP's residual
        // stream does not fit float16's range.
        let half = self.g.half;
        let x = if half { self.g.cast(&x, false) } else { x };
        let y = self.g.layer_norm(&x, &host(n.gamma.val()), &beta, self.cfg.layer_norm_eps, &name);
        if half { self.g.cast(&y, true) } else { y }
    }

    fn linear(&mut self, x: String, l: &Linear) -> String {
        self.module_product(x, l, true)
    }

    /// In float32 in an int8 graph too, as the CPU's int8 path keeps it in
    /// bf16: a small product that carries much of int8's loss of accuracy.
    fn projection(&mut self, x: String, l: &Linear) -> String {
        self.module_product(x, l, false)
    }

    fn activation(&mut self, x: String, a: Activation) -> String {
        match a {
            Activation::QuickGelu => self.g.quick_gelu(&x),
            Activation::Gelu => self.g.gelu(&x),
        }
    }

    fn add(&mut self, a: String, b: String) -> String {
        self.g.bin("Add", &a, &b)
    }

    fn attention(&mut self, qkv: String, heads: usize, queries: Option<usize>) -> String {
        let g = &mut *self.g;
        let h = self.cfg.hidden_size;
        let hd = h / heads;
        let sh = g.init_i64("shape", &[0, 0, 3, heads as i64, hd as i64]);
        let qkv = g.op("Reshape", &[&qkv, &sh], vec![]);
        let qkv = g.op("Transpose", &[&qkv], vec![attr_ints("perm", &[2, 0, 3, 1, 4])]);
        let mut parts = Vec::new();
        for k in 0..3 {
            let idx = g.init_i64("index", &[k]);
            let t = g.op("Gather", &[&qkv, &idx], vec![attr_int("axis", 0)]);
            let sq = g.init_i64("axes", &[0]);
            parts.push(g.op("Squeeze", &[&t, &sq], vec![]));
        }
        let mut q = parts[0].clone();
        if let Some(n) = queries {
            // [B, heads, T, hd]: keep the first n query tokens.
            let (start, end, axes) = (g.init_i64("starts", &[0]), g.init_i64("ends", &[n as i64]), g.init_i64("axes", &[2]));
            q = g.op("Slice", &[&q, &start, &end, &axes], vec![]);
        }
        let kt = g.op("Transpose", &[&parts[1]], vec![attr_ints("perm", &[0, 1, 3, 2])]);
        let scale = g.scalar("attn_scale", (hd as f32).powf(-0.5));
        let q = g.bin("Mul", &q, &scale);
        let scores = g.bin("MatMul", &q, &kt);
        let attn = g.op("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let ctx = g.bin("MatMul", &attn, &parts[2]);
        let ctx = g.op("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let sh = g.init_i64("shape", &[0, 0, h as i64]);
        g.op("Reshape", &[&ctx, &sh], vec![])
    }

    fn first_tokens(&mut self, x: String, n: Option<usize>) -> String {
        let Some(n) = n else { return x };
        let g = &mut *self.g;
        let (start, end, axes) = (g.init_i64("starts", &[0]), g.init_i64("ends", &[n as i64]), g.init_i64("axes", &[1]));
        g.op("Slice", &[&x, &start, &end, &axes], vec![])
    }

    fn class_token(&mut self, x: String) -> String {
        let sq = self.g.init_i64("axes", &[1]);
        self.g.op("Squeeze", &[&x, &sq], vec![])
    }
}

/// The encoder and the head: CLIP-normalised pixels in, probabilities out.
/// The encoder's graph comes from its own forward pass, with the loaded
/// module's parameters, in `precision`: f32, f16, or int8 (the products as
/// `MatMulInteger` on inputs quantised per tensor; see [`Graph::linear_int8`]).
pub fn export_pipeline(enc: &ImageEncoder, m: &GuardModel, precision: Precision) -> Result<Vec<u8>> {
    m.check_encoder(&enc.id)?;
    let half = match precision {
        Precision::F32 | Precision::Int8 => false,
        Precision::F16 => true,
        Precision::Bf16 => return Err(crate::error::Error::Device("ONNX graphs are exported in f32, f16 or int8, not bf16".into())),
    };
    let s = enc.config.image_size;
    let mut g = Graph::new("pairguard_pipeline");
    g.int8 = precision == Precision::Int8;
    let pixels = if half { g.cast("pixel_values", true) } else { "pixel_values".to_string() };
    let mut e = enc.model.run(&mut Emit { g: &mut g, cfg: &enc.config, counter: 0 }, pixels);
    if half {
        e = g.cast(&e, false);
    }
    if enc.id.normalized {
        e = g.l2_normalize(&e);
    }
    let out = head_graph(&mut g, &e, m);
    let doc = format!(
        "pairguard pipeline: CLIP vision encoder {} (weights sha256 {}) + guard head; input is CLIP-normalised pixels; outputs {:?}; threshold {}",
        enc.id.model, enc.id.weights_sha256, m.card.outputs, m.card.threshold
    );
    let input = value_info("pixel_values", &[None, Some(3), Some(s as i64), Some(s as i64)]);
    Ok(g.finish(input, &out, m, metadata(m, "pixel_values", precision), &doc))
}
