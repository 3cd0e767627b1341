//! ONNX export, built directly as ONNX protobuf (opset 17, IR 8) from the
//! model's own weights, so what runs elsewhere is exactly what was trained:
//!
//! * the head alone: `embedding [batch, D]` -> `probabilities [batch, O]`,
//!   normalisation and temperature included;
//! * the whole pipeline: `pixel_values [batch, 3, S, S]` (CLIP-normalised,
//!   as [`crate::clip::Preprocessor::pixels`] makes them) -> the same
//!   probabilities, with the CLIP vision transformer in front.
//!
//! Column 0 is P(unsafe) after temperature scaling; further columns are the
//! per-category probabilities of multi-label heads. LayerNorm and GELU are
//! written as primitive ops so any runtime that speaks opset 17 runs them.

use prost::Message;
use tract_onnx::pb;

use crate::clip::config::Activation;
use crate::clip::Encoder;
use crate::error::Result;
use crate::guard::GuardModel;
use crate::head::HeadKind;
use crate::normalize::NormKind;

pub const OPSET: i64 = 17;

/// A small builder over the protobuf graph.
struct Graph {
    g: pb::GraphProto,
    counter: usize,
}

fn attr_int(name: &str, v: i64) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Int as i32, i: v, ..Default::default() }
}

fn attr_ints(name: &str, v: &[i64]) -> pb::AttributeProto {
    pb::AttributeProto { name: name.into(), r#type: pb::attribute_proto::AttributeType::Ints as i32, ints: v.to_vec(), ..Default::default() }
}

fn value_info(name: &str, dims: &[Option<i64>]) -> pb::ValueInfoProto {
    use pb::tensor_shape_proto::{dimension::Value, Dimension};
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
        name: name.into(),
        r#type: Some(pb::TypeProto {
            value: Some(pb::type_proto::Value::TensorType(pb::type_proto::Tensor {
                elem_type: pb::tensor_proto::DataType::Float as i32,
                shape: Some(pb::TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}

impl Graph {
    fn new(name: &str) -> Self {
        Graph { g: pb::GraphProto { name: name.into(), ..Default::default() }, counter: 0 }
    }

    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    fn init_f32(&mut self, name: &str, dims: &[usize], data: &[f32]) -> String {
        assert_eq!(dims.iter().product::<usize>(), data.len(), "initializer {name}");
        let name = self.fresh(name);
        self.g.initializer.push(pb::TensorProto {
            name: name.clone(),
            dims: dims.iter().map(|&d| d as i64).collect(),
            data_type: pb::tensor_proto::DataType::Float as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn init_i64(&mut self, name: &str, data: &[i64]) -> String {
        let name = self.fresh(name);
        self.g.initializer.push(pb::TensorProto {
            name: name.clone(),
            dims: vec![data.len() as i64],
            data_type: pb::tensor_proto::DataType::Int64 as i32,
            raw_data: data.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        name
    }

    fn scalar(&mut self, name: &str, v: f32) -> String {
        self.init_f32(name, &[], &[v])
    }

    fn op(&mut self, op: &str, inputs: &[&str], attrs: Vec<pb::AttributeProto>) -> String {
        let out = self.fresh(&op.to_ascii_lowercase());
        self.g.node.push(pb::NodeProto {
            op_type: op.into(),
            name: out.clone(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![out.clone()],
            attribute: attrs,
            ..Default::default()
        });
        out
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

    fn layer_norm(&mut self, x: &str, w: &[f32], b: &[f32], eps: f64, name: &str) -> String {
        let mean = self.op("ReduceMean", &[x], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let centred = self.bin("Sub", x, &mean);
        let sq = self.bin("Mul", &centred, &centred);
        let var = self.op("ReduceMean", &[&sq], vec![attr_ints("axes", &[-1]), attr_int("keepdims", 1)]);
        let e = self.scalar("ln_eps", eps as f32);
        let var = self.bin("Add", &var, &e);
        let std = self.op("Sqrt", &[&var], vec![]);
        let y = self.bin("Div", &centred, &std);
        let wn = self.init_f32(&format!("{name}.weight"), &[w.len()], w);
        let bn = self.init_f32(&format!("{name}.bias"), &[b.len()], b);
        let y = self.bin("Mul", &y, &wn);
        self.bin("Add", &y, &bn)
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

    fn finish(mut self, input: pb::ValueInfoProto, output: &str, out_dims: &[Option<i64>], doc: &str) -> Vec<u8> {
        // Name the output tensor "probabilities".
        let last = self.g.node.last_mut().expect("graph has nodes");
        assert_eq!(last.output[0], output);
        last.output[0] = "probabilities".into();
        self.g.input.push(input);
        self.g.output.push(value_info("probabilities", out_dims));
        let model = pb::ModelProto {
            ir_version: 8,
            opset_import: vec![pb::OperatorSetIdProto { domain: String::new(), version: OPSET }],
            producer_name: "pairguard".into(),
            producer_version: env!("CARGO_PKG_VERSION").into(),
            doc_string: doc.into(),
            graph: Some(self.g),
            ..Default::default()
        };
        model.encode_to_vec()
    }
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
    let o = m.head.outputs as i64;
    let doc = format!("pairguard guard head; outputs {:?}; threshold {}", m.card.outputs, m.card.threshold);
    g.finish(value_info("embedding", &[None, Some(m.head.input_dim as i64)]), &out, &[None, Some(o)], &doc)
}

/// A parameter's values on the host, row-major.
fn host<const D: usize>(t: burn::tensor::Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
}

fn linear_params(l: &burn::nn::Linear) -> (Vec<f32>, Option<Vec<f32>>, usize, usize) {
    let [din, dout] = l.weight.val().dims();
    (host(l.weight.val()), l.bias.as_ref().map(|b| host(b.val())), din, dout)
}

fn norm_params(n: &burn::nn::LayerNorm) -> (Vec<f32>, Vec<f32>) {
    let beta = n.beta.as_ref().map(|b| host(b.val())).unwrap_or_else(|| vec![0.0; n.gamma.val().dims()[0]]);
    (host(n.gamma.val()), beta)
}

impl Graph {
    fn nn_linear(&mut self, x: &str, l: &burn::nn::Linear, name: &str) -> String {
        let (w, b, din, dout) = linear_params(l);
        self.linear(x, &w, b.as_deref(), din, dout, name)
    }

    fn nn_layer_norm(&mut self, x: &str, n: &burn::nn::LayerNorm, eps: f64, name: &str) -> String {
        let (w, b) = norm_params(n);
        self.layer_norm(x, &w, &b, eps, name)
    }
}

/// The encoder and the head: CLIP-normalised pixels in, probabilities out.
/// The encoder's parameters are read from the loaded module.
pub fn export_pipeline(enc: &Encoder, m: &GuardModel) -> Result<Vec<u8>> {
    m.check_encoder(&enc.id)?;
    let cfg = &enc.config;
    let vm = &enc.model.vision_model;
    let (s, p, hsz) = (cfg.image_size, cfg.patch_size, cfg.hidden_size);
    let gsz = s / p;
    let heads = cfg.num_attention_heads;
    let hd = hsz / heads;
    let eps = cfg.layer_norm_eps;
    let mut g = Graph::new("pairguard_pipeline");

    // Patchify: [B,3,S,S] -> [B,3,g,P,g,P] -> [B,g,g,3,P,P] -> [B,g*g,3PP],
    // then the convolution as a matmul with its kernel flattened to [3PP, H].
    let shape1 = g.init_i64("shape", &[-1, 3, gsz as i64, p as i64, gsz as i64, p as i64]);
    let x = g.op("Reshape", &["pixel_values", &shape1], vec![]);
    let x = g.op("Transpose", &[&x], vec![attr_ints("perm", &[0, 2, 4, 1, 3, 5])]);
    let shape2 = g.init_i64("shape", &[-1, (gsz * gsz) as i64, (3 * p * p) as i64]);
    let x = g.op("Reshape", &[&x, &shape2], vec![]);
    let kernel = host(vm.embeddings.patch_embedding.weight.val().reshape([hsz, 3 * p * p]).transpose());
    let x = g.linear(&x, &kernel, None, 3 * p * p, hsz, "embeddings.patch_embedding");
    // Class token broadcast to the batch: Expand([1,1,H], [B,1,H]).
    let cls = g.init_f32("embeddings.class_embedding", &[1, 1, hsz], &host(vm.embeddings.class_embedding.val()));
    let pshape = g.op("Shape", &["pixel_values"], vec![]);
    let zero = g.init_i64("index", &[0]);
    let batch = g.op("Gather", &[&pshape, &zero], vec![attr_int("axis", 0)]);
    let rest = g.init_i64("shape", &[1, hsz as i64]);
    let cls_shape = g.op("Concat", &[&batch, &rest], vec![attr_int("axis", 0)]);
    let cls = g.op("Expand", &[&cls, &cls_shape], vec![]);
    let x = g.op("Concat", &[&cls, &x], vec![attr_int("axis", 1)]);
    let pos = g.init_f32("embeddings.position_embedding", &[gsz * gsz + 1, hsz], &host(vm.embeddings.position_embedding.weight.val()));
    let x = g.bin("Add", &x, &pos);
    let mut x = g.nn_layer_norm(&x, &vm.pre_layrnorm, eps, "pre_layrnorm");

    for (i, layer) in vm.encoder.layers.iter().enumerate() {
        let l = |n: &str| format!("layers.{i}.{n}");
        let h1 = g.nn_layer_norm(&x, &layer.layer_norm1, eps, &l("layer_norm1"));
        let qkv = g.nn_linear(&h1, &layer.self_attn.qkv_proj, &l("self_attn.qkv_proj"));
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
        let kt = g.op("Transpose", &[&parts[1]], vec![attr_ints("perm", &[0, 1, 3, 2])]);
        let scale = g.scalar("attn_scale", (hd as f32).powf(-0.5));
        let q = g.bin("Mul", &parts[0], &scale);
        let scores = g.bin("MatMul", &q, &kt);
        let attn = g.op("Softmax", &[&scores], vec![attr_int("axis", -1)]);
        let ctx = g.bin("MatMul", &attn, &parts[2]);
        let ctx = g.op("Transpose", &[&ctx], vec![attr_ints("perm", &[0, 2, 1, 3])]);
        let sh = g.init_i64("shape", &[0, 0, hsz as i64]);
        let ctx = g.op("Reshape", &[&ctx, &sh], vec![]);
        let a = g.nn_linear(&ctx, &layer.self_attn.out_proj, &l("self_attn.out_proj"));
        x = g.bin("Add", &x, &a);
        let h2 = g.nn_layer_norm(&x, &layer.layer_norm2, eps, &l("layer_norm2"));
        let m1 = g.nn_linear(&h2, &layer.mlp.fc1, &l("mlp.fc1"));
        let act = match layer.mlp.activation {
            Activation::QuickGelu => g.quick_gelu(&m1),
            Activation::Gelu => g.gelu(&m1),
        };
        let m2 = g.nn_linear(&act, &layer.mlp.fc2, &l("mlp.fc2"));
        x = g.bin("Add", &x, &m2);
    }
    let zero = g.init_i64("index", &[0]);
    let cls = g.op("Gather", &[&x, &zero], vec![attr_int("axis", 1)]);
    let sq = g.init_i64("axes", &[1]);
    let cls = g.op("Squeeze", &[&cls, &sq], vec![]);
    let cls = g.nn_layer_norm(&cls, &vm.post_layernorm, eps, "post_layernorm");
    let mut e = g.nn_linear(&cls, &enc.model.visual_projection, "visual_projection");
    if enc.id.normalized {
        e = g.l2_normalize(&e);
    }
    let out = head_graph(&mut g, &e, m);
    let o = m.head.outputs as i64;
    let doc = format!(
        "pairguard pipeline: CLIP vision encoder {} (weights sha256 {}) + guard head; input is CLIP-normalised pixels; outputs {:?}; threshold {}",
        enc.id.model, enc.id.weights_sha256, m.card.outputs, m.card.threshold
    );
    Ok(g.finish(value_info("pixel_values", &[None, Some(3), Some(s as i64), Some(s as i64)]), &out, &[None, Some(o)], &doc))
}
