//! Guard heads on frozen embeddings, as a *bank*: H independent heads of the
//! same shape stored in stacked parameters (`[H, D, O]`) and evaluated with
//! one batched matmul. The heads share no parameters, so with AdamW (which
//! acts element-wise) training a bank is exactly training each head alone;
//! with L-BFGS the bank shares line searches and reaches the same optimum of
//! each (convex) head's objective. Either way a weight-decay sweep or a whole
//! sample-size curve costs one computation.

use crate::normalize::NormKind;
use crate::train::Optimizer;
use burn::module::{Module, Param};
use burn::tensor::activation::{gelu, relu};
use burn::tensor::{Device, Tensor, TensorData};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

/// The architecture of a head.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum HeadKind {
    /// A linear probe: logistic regression on the embedding.
    #[default]
    Linear,
    /// An adapter: one hidden layer with GELU and dropout.
    Mlp { hidden: usize, dropout: f64 },
    /// Prompts (Q16): an unsafe and a safe class vector per policy
    /// category, `[D, 2K]` (unsafe columns first). Class logits are `scale`
    /// x the cosine of the embedding with each column, plus a class bias
    /// (zero in a zero-shot guard); "unsafe" is the
    /// softmax mass of the unsafe columns, category k the softmax of its
    /// pair. Initialised from the policy's text embeddings, this is CLIP's
    /// zero-shot classifier; trained, it is a prompt-learned guard.
    Prompt {
        /// From the policy the head starts from; 0 until then.
        #[serde(default)]
        categories: usize,
        #[serde(default = "clip_scale")]
        scale: f64,
    },
    /// A fixed concept filter (the Stable Diffusion safety checker): the
    /// cosines of the embedding with `concepts` concept and `special`
    /// special-care columns, less a threshold each; any special-care score
    /// above 0 raises every concept score by `adjustment`; the logit is
    /// `scale` x the highest concept score, so "unsafe" at probability 0.5
    /// is the checker's verdict. Not trained.
    Concepts { concepts: usize, special: usize, adjustment: f64, scale: f64 },
    /// A published feed-forward head (the LAION CLIP-based NSFW detector,
    /// Unsafe Diffusion's multi-headed classifier): `layers` dense layers
    /// with ReLU between them, the first `hidden` wide; the widths after it
    /// are read from the weights. The last layer gives the logits; with
    /// `any`, one per category, and "unsafe" is the highest of them (an
    /// image is unsafe when any category's head flags it). Not trained.
    Relu { hidden: usize, layers: usize, any: bool },
}

impl std::str::FromStr for HeadKind {
    type Err = crate::Error;

    /// `linear`, `mlp` with the adapter's default width and dropout, or
    /// `prompt` (its categories come from the policy it is built from).
    fn from_str(s: &str) -> crate::Result<Self> {
        match s {
            "linear" => Ok(HeadKind::Linear),
            "mlp" => Ok(HeadKind::mlp()),
            "prompt" => Ok(HeadKind::Prompt { categories: 0, scale: CLIP_SCALE }),
            other => Err(crate::Error::UnknownName { kind: "head", name: other.into(), known: "linear, mlp, prompt".into() }),
        }
    }
}

impl HeadKind {
    /// The MLP adapter with its default width and dropout.
    pub fn mlp() -> Self {
        HeadKind::Mlp { hidden: 256, dropout: 0.2 }
    }

    pub fn name(&self) -> String {
        match self {
            HeadKind::Linear => "linear".into(),
            HeadKind::Mlp { hidden, .. } => format!("mlp-{hidden}"),
            HeadKind::Prompt { .. } => "prompt".into(),
            HeadKind::Concepts { .. } => "concepts".into(),
            HeadKind::Relu { layers, .. } => format!("relu-{layers}"),
        }
    }

    /// The optimiser a head trains with by default: L-BFGS for the convex
    /// heads, AdamW for the MLP adapter, whose dropout L-BFGS cannot take.
    pub fn default_optimizer(&self) -> Optimizer {
        match self {
            HeadKind::Linear | HeadKind::Prompt { .. } | HeadKind::Concepts { .. } | HeadKind::Relu { .. } => Optimizer::lbfgs(),
            HeadKind::Mlp { .. } => Optimizer::adamw(),
        }
    }

    /// Whether the head reads unit-length embeddings only (it compares
    /// directions, as CLIP does), so its normalisation must be L2.
    pub fn needs_unit_embeddings(&self) -> bool {
        matches!(self, HeadKind::Prompt { .. } | HeadKind::Concepts { .. })
    }

    /// The first hidden width, for the heads that have more than one layer.
    pub fn hidden(&self) -> Option<usize> {
        match *self {
            HeadKind::Mlp { hidden, .. } | HeadKind::Relu { hidden, .. } => Some(hidden),
            HeadKind::Linear | HeadKind::Prompt { .. } | HeadKind::Concepts { .. } => None,
        }
    }

    /// The dense layers between the first and the last.
    pub fn middle_layers(&self) -> usize {
        match *self {
            HeadKind::Relu { layers, .. } => layers.saturating_sub(2),
            _ => 0,
        }
    }

    /// Outputs of the last layer: all the head's outputs, less the "unsafe"
    /// a head of `any` takes as their highest.
    pub fn last_layer_outputs(&self, outputs: usize) -> usize {
        match *self {
            HeadKind::Relu { any: true, .. } => outputs - 1,
            _ => outputs,
        }
    }

    /// The dropout applied while training (0 for heads without one).
    pub fn dropout(&self) -> f64 {
        match *self {
            HeadKind::Mlp { dropout, .. } => dropout,
            HeadKind::Linear | HeadKind::Prompt { .. } | HeadKind::Concepts { .. } | HeadKind::Relu { .. } => 0.0,
        }
    }

    /// Checks the head's own settings for training with `optimizer` on
    /// embeddings normalised by `normalization`: the option at fault and why.
    pub fn check_training(&self, optimizer: &Optimizer, normalization: NormKind) -> Result<(), (&'static str, String)> {
        match *self {
            HeadKind::Linear => {}
            HeadKind::Mlp { hidden, dropout } => {
                if hidden == 0 || !(0.0..1.0).contains(&dropout) {
                    return Err(("head", format!("an MLP needs hidden > 0 and dropout in [0, 1), got hidden {hidden}, dropout {dropout}")));
                }
                if matches!(optimizer, Optimizer::Lbfgs { .. }) && dropout > 0.0 {
                    return Err(("optimizer", "L-BFGS needs a deterministic objective: use dropout = 0 or optimizer = { kind = \"adamw\" }".into()));
                }
            }
            HeadKind::Concepts { .. } => return Err(("head", "a concept filter is a published fixed head; it is imported, not trained".into())),
            HeadKind::Relu { .. } => return Err(("head", "a ReLU network is a published fixed head; it is imported, not trained".into())),
            HeadKind::Prompt { categories, scale } => {
                // Categories 0: not yet known (they come with the policy's start).
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(("head", format!("a prompt head needs a positive scale, got {scale} ({categories} categories)")));
                }
                if normalization == NormKind::Standardize {
                    return Err(("normalization", "a prompt head compares directions: use normalization = \"l2\"".into()));
                }
            }
        }
        Ok(())
    }

    /// Checks a saved guard's head against its number of outputs: what a
    /// card that does not describe a usable head gets told.
    pub fn check_saved(&self, outputs: usize) -> Result<(), String> {
        match *self {
            HeadKind::Mlp { hidden: 0, .. } | HeadKind::Prompt { categories: 0, .. } => {
                Err("`input_dim`, the MLP's `hidden` and the prompt head's `categories` must be positive".into())
            }
            HeadKind::Concepts { concepts, adjustment, scale, .. }
                if concepts == 0 || outputs != 1 || !(scale > 0.0 && scale.is_finite() && adjustment.is_finite()) =>
            {
                Err("a concept filter has concepts, one output, a positive scale and a finite adjustment".into())
            }
            HeadKind::Relu { hidden, layers, any } if hidden == 0 || layers < 2 || outputs < 1 + usize::from(any) => Err(format!(
                "a ReLU network has at least 2 layers, a positive `hidden` and {} outputs, got {layers} layers, hidden {hidden}, {outputs} outputs",
                if any { "at least 2 (\"unsafe\" is the highest category's)" } else { "at least 1" }
            )),
            HeadKind::Prompt { categories, scale } if !(scale > 0.0 && scale.is_finite() && [1, 1 + categories].contains(&outputs)) => {
                Err(format!("a prompt head of {categories} categories has 1 or {} outputs and a positive scale", 1 + categories))
            }
            _ => Ok(()),
        }
    }

    /// The MLP adapter with its width and dropout replaced where given;
    /// None for heads that are not MLPs.
    pub fn with_mlp_shape(self, hidden: Option<usize>, dropout: Option<f64>) -> Option<Self> {
        match self {
            HeadKind::Mlp { hidden: h, dropout: p } => Some(HeadKind::Mlp { hidden: hidden.unwrap_or(h), dropout: dropout.unwrap_or(p) }),
            HeadKind::Linear | HeadKind::Prompt { .. } | HeadKind::Concepts { .. } | HeadKind::Relu { .. } => None,
        }
    }

    /// Whether training this head needs a policy's text to start from.
    pub fn needs_policy(&self) -> bool {
        matches!(self, HeadKind::Prompt { .. })
    }

    /// Whether this head can start from a policy's zero-shot guard.
    pub fn starts_from_policy(&self) -> bool {
        matches!(self, HeadKind::Linear | HeadKind::Prompt { .. })
    }

    /// Columns of the first weight matrix for `outputs` outputs.
    pub fn width(&self, outputs: usize) -> usize {
        match *self {
            HeadKind::Linear => outputs,
            HeadKind::Mlp { hidden, .. } | HeadKind::Relu { hidden, .. } => hidden,
            HeadKind::Prompt { categories, .. } => 2 * categories,
            HeadKind::Concepts { concepts, special, .. } => concepts + special,
        }
    }
}

/// CLIP's logit scale (exp of the learned temperature, clipped at 100).
pub const CLIP_SCALE: f64 = 100.0;

fn clip_scale() -> f64 {
    CLIP_SCALE
}

/// Weights of one trained head, row-major, on the host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HeadWeights {
    pub kind: HeadKind,
    pub input_dim: usize,
    pub outputs: usize,
    /// `[D, O]` (linear) or `[D, hidden]` (MLP).
    pub w1: Vec<f32>,
    pub b1: Vec<f32>,
    /// The last layer of the heads with more than one: `[hidden, O]` and
    /// `[O]` for the MLP.
    pub w2: Option<Vec<f32>>,
    pub b2: Option<Vec<f32>>,
    /// The layers between the first and the last (a ReLU network's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub middle: Vec<Dense>,
}

/// A dense layer: `w` `[inputs, outputs]` row-major and `b` `[outputs]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dense {
    pub inputs: usize,
    pub outputs: usize,
    pub w: Vec<f32>,
    pub b: Vec<f32>,
}

impl HeadWeights {
    pub fn hidden(&self) -> Option<usize> {
        self.kind.hidden()
    }

    /// Logits for row-major `[n, D]` features, on the host. Used to check the
    /// device paths and exports against plain arithmetic.
    pub fn logits_host(&self, x: &[f32]) -> Vec<f32> {
        let d = self.input_dim;
        let matvec = |row: &[f32], w: &[f32], b: &[f32], out: usize| -> Vec<f32> {
            (0..out).map(|o| b[o] + row.iter().enumerate().map(|(i, v)| v * w[i * out + o]).sum::<f32>()).collect()
        };
        if let HeadKind::Prompt { categories: k, scale } = self.kind {
            let columns = prompt_columns(&self.w1, d, 2 * k, scale);
            let lse = |z: &[f32]| {
                let m = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                m + z.iter().map(|v| (v - m).exp()).sum::<f32>().ln()
            };
            return x
                .chunks(d)
                .flat_map(|row| {
                    let z = matvec(row, &columns, &self.b1, 2 * k);
                    let (u, s) = z.split_at(k);
                    std::iter::once(lse(u) - lse(s)).chain((0..self.outputs - 1).map(move |c| u[c] - s[c])).collect::<Vec<f32>>()
                })
                .collect();
        }
        if let HeadKind::Concepts { concepts, special, adjustment, scale } = self.kind {
            let w = concepts + special;
            let columns = prompt_columns(&self.w1, d, w, 1.0);
            let max = |v: &[f32]| v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            return x
                .chunks(d)
                .map(|row| {
                    let scores: Vec<f32> = matvec(row, &columns, &vec![0.0; w], w).iter().zip(&self.b1).map(|(c, t)| c - t).collect();
                    let adjust = if special > 0 && max(&scores[concepts..]) > 0.0 { adjustment as f32 } else { 0.0 };
                    scale as f32 * (max(&scores[..concepts]) + adjust)
                })
                .collect();
        }
        if let HeadKind::Relu { hidden, any, .. } = self.kind {
            let relu = |v: Vec<f32>| v.into_iter().map(|z| z.max(0.0)).collect::<Vec<f32>>();
            let (w2, b2) = (self.w2.as_deref().expect("a ReLU network has a last layer"), self.b2.as_deref().expect("and its bias"));
            let last = self.kind.last_layer_outputs(self.outputs);
            return x
                .chunks(d)
                .flat_map(|row| {
                    let a = self.middle.iter().fold(relu(matvec(row, &self.w1, &self.b1, hidden)), |a, l| relu(matvec(&a, &l.w, &l.b, l.outputs)));
                    let z = matvec(&a, w2, b2, last);
                    let top = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                    if any { std::iter::once(top).chain(z).collect() } else { z }
                })
                .collect();
        }
        x.chunks(d)
            .flat_map(|row| match (self.hidden(), &self.w2, &self.b2) {
                (Some(h), Some(w2), Some(b2)) => {
                    let hid: Vec<f32> = matvec(row, &self.w1, &self.b1, h).into_iter().map(gelu_host).collect();
                    matvec(&hid, w2, b2, self.outputs)
                }
                _ => matvec(row, &self.w1, &self.b1, self.outputs),
            })
            .collect()
    }
}

/// A prompt head's columns `[D, C]` at unit length, times `scale`: what
/// multiplies a unit embedding to give the class logits.
pub fn prompt_columns(w: &[f32], d: usize, c: usize, scale: f64) -> Vec<f32> {
    let norms: Vec<f32> = (0..c).map(|j| (0..d).map(|i| w[i * c + j] * w[i * c + j]).sum::<f32>().sqrt().max(1e-12)).collect();
    (0..d * c).map(|i| w[i] / norms[i % c] * scale as f32).collect()
}

/// Exact (erf) GELU, as burn's `gelu`.
pub fn gelu_host(x: f32) -> f32 {
    (0.5 * f64::from(x) * (1.0 + libm::erf(f64::from(x) / std::f64::consts::SQRT_2))) as f32
}

/// Per-head standardisation of the bank's input (see [`crate::train`]):
/// means `[H, 1, D]` and reciprocal standard deviations `[H, D, 1]`.
#[derive(Debug, Clone)]
pub struct Affine {
    pub mean: Tensor<3>,
    pub inv_std: Tensor<3>,
}

/// H heads in stacked parameters.
#[derive(Module, Debug)]
pub struct HeadBank {
    pub w1: Param<Tensor<3>>,
    pub b1: Param<Tensor<3>>,
    pub w2: Option<Param<Tensor<3>>>,
    pub b2: Option<Param<Tensor<3>>>,
    /// A ReLU network's layers between the first and the last.
    pub middle_w: Vec<Param<Tensor<3>>>,
    pub middle_b: Vec<Param<Tensor<3>>>,
    /// How the outputs are read off the first layer's columns.
    #[module(skip)]
    pub readout: Readout,
}

/// How a bank's outputs come from its first layer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Readout {
    /// The first layer (and the MLP's second) gives the outputs.
    #[default]
    Direct,
    /// Cosine class logits of a prompt head (see [`HeadKind::Prompt`]);
    /// `outputs` is 1 or 1 + K.
    Prompt { categories: usize, scale: f64, outputs: usize },
    /// See [`HeadKind::Concepts`].
    Concepts { concepts: usize, special: usize, adjustment: f64, scale: f64 },
    /// ReLU between the layers instead of GELU; with `any`, "unsafe" is
    /// prepended as the highest of the last layer's outputs (see
    /// [`HeadKind::Relu`]).
    Relu { any: bool },
}

impl Readout {
    fn of(kind: HeadKind, outputs: usize) -> Self {
        match kind {
            HeadKind::Prompt { categories, scale } => Readout::Prompt { categories, scale, outputs },
            HeadKind::Concepts { concepts, special, adjustment, scale } => Readout::Concepts { concepts, special, adjustment, scale },
            HeadKind::Relu { any, .. } => Readout::Relu { any },
            HeadKind::Linear | HeadKind::Mlp { .. } => Readout::Direct,
        }
    }
}

/// `log(sum(exp(z)))` over the last axis, kept as size 1.
fn log_sum_exp(z: Tensor<3>) -> Tensor<3> {
    let m = z.clone().max_dim(2);
    (z - m.clone()).exp().sum_dim(2).log() + m
}

fn tensor3(values: Vec<f32>, shape: [usize; 3], device: &Device) -> Tensor<3> {
    Tensor::from_data(TensorData::new(values, shape), device)
}

impl HeadBank {
    /// Initialises H heads from a seed on the host, so every backend starts
    /// from identical weights. Linear heads start at zero (the convex
    /// problem needs no symmetry breaking); MLPs get N(0, 1/fan_in) weights.
    /// Prompt heads get N(0, 1/D) columns here; training starts them from
    /// text embeddings instead (`BankJob::start`).
    pub fn init(kind: HeadKind, heads: usize, d: usize, outputs: usize, seed: u64, device: &Device) -> Self {
        let last = kind.last_layer_outputs(outputs);
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = |n: usize, fan_in: usize| -> Vec<f32> {
            let dist = Normal::new(0.0, 1.0 / (fan_in as f64).sqrt()).expect("valid std");
            (0..n).map(|_| dist.sample(&mut rng) as f32).collect()
        };
        match kind {
            HeadKind::Linear => HeadBank {
                w1: Param::from_tensor(tensor3(vec![0.0; heads * d * outputs], [heads, d, outputs], device)),
                b1: Param::from_tensor(tensor3(vec![0.0; heads * outputs], [heads, 1, outputs], device)),
                w2: None,
                b2: None,
                middle_w: Vec::new(),
                middle_b: Vec::new(),
                readout: Readout::Direct,
            },
            HeadKind::Prompt { .. } | HeadKind::Concepts { .. } => {
                let w = kind.width(outputs);
                HeadBank {
                    w1: Param::from_tensor(tensor3(normal(heads * d * w, d), [heads, d, w], device)),
                    b1: Param::from_tensor(tensor3(vec![0.0; heads * w], [heads, 1, w], device)),
                    w2: None,
                    b2: None,
                    middle_w: Vec::new(),
                    middle_b: Vec::new(),
                    readout: Readout::of(kind, outputs),
                }
            }
            // A network of unknown middle widths: the first and last layers
            // only, ReLU between them.
            HeadKind::Mlp { hidden, .. } | HeadKind::Relu { hidden, .. } => HeadBank {
                w1: Param::from_tensor(tensor3(normal(heads * d * hidden, d), [heads, d, hidden], device)),
                b1: Param::from_tensor(tensor3(vec![0.0; heads * hidden], [heads, 1, hidden], device)),
                w2: Some(Param::from_tensor(tensor3(normal(heads * hidden * last, hidden), [heads, hidden, last], device))),
                b2: Some(Param::from_tensor(tensor3(vec![0.0; heads * last], [heads, 1, last], device))),
                middle_w: Vec::new(),
                middle_b: Vec::new(),
                readout: Readout::of(kind, outputs),
            },
        }
    }

    /// A bank holding the given trained heads (all of one shape).
    pub fn from_weights(heads: &[&HeadWeights], device: &Device) -> Self {
        let h = heads.len();
        let first = heads[0];
        let cat = |f: &dyn Fn(&HeadWeights) -> Vec<f32>| heads.iter().flat_map(|w| f(w)).collect::<Vec<f32>>();
        let (d, o) = (first.input_dim, first.outputs);
        let width = first.kind.width(o);
        let last_in = first.middle.last().map_or(width, |l| l.outputs);
        let last_out = first.kind.last_layer_outputs(o);
        HeadBank {
            w1: Param::from_tensor(tensor3(cat(&|w| w.w1.clone()), [h, d, width], device)),
            b1: Param::from_tensor(tensor3(cat(&|w| w.b1.clone()), [h, 1, width], device)),
            w2: first.w2.as_ref().map(|_| Param::from_tensor(tensor3(cat(&|w| w.w2.clone().unwrap()), [h, last_in, last_out], device))),
            b2: first.b2.as_ref().map(|_| Param::from_tensor(tensor3(cat(&|w| w.b2.clone().unwrap()), [h, 1, last_out], device))),
            middle_w: (0..first.middle.len())
                .map(|i| {
                    let l = &first.middle[i];
                    Param::from_tensor(tensor3(cat(&|w| w.middle[i].w.clone()), [h, l.inputs, l.outputs], device))
                })
                .collect(),
            middle_b: (0..first.middle.len())
                .map(|i| Param::from_tensor(tensor3(cat(&|w| w.middle[i].b.clone()), [h, 1, first.middle[i].outputs], device)))
                .collect(),
            readout: Readout::of(first.kind, o),
        }
    }

    pub fn heads(&self) -> usize {
        self.w1.val().dims()[0]
    }

    /// Logits `[H, N, O]` for features `[N, D]`, standardised per head by
    /// `affine` when given. `dropout_keep` is a pre-scaled keep mask
    /// `[H, N, hidden]` for MLP training.
    pub fn forward(&self, x: Tensor<2>, affine: Option<&Affine>, dropout_keep: Option<Tensor<3>>) -> Tensor<3> {
        let [h, d, width] = self.w1.val().dims();
        let n = x.dims()[0];
        // Cosines with unit columns (inputs arrive L2-normalised).
        let cosines = || {
            let w = self.w1.val();
            let w = w.clone() / w.square().sum_dim(1).sqrt().clamp_min(1e-12);
            x.clone().matmul(w.permute([1, 0, 2]).reshape([d, h * width])).reshape([n, h, width]).swap_dims(0, 1)
        };
        match self.readout {
            Readout::Prompt { categories: k, scale, outputs } => {
                let z = cosines().mul_scalar(scale) + self.b1.val();
                let (u, s) = (z.clone().narrow(2, 0, k), z.narrow(2, k, k));
                let unsafe_ = log_sum_exp(u.clone()) - log_sum_exp(s.clone());
                return if outputs == 1 { unsafe_ } else { Tensor::cat(vec![unsafe_, u - s], 2) };
            }
            Readout::Concepts { concepts, special, adjustment, scale } => {
                let scores = cosines() - self.b1.val();
                let mut z = scores.clone().narrow(2, 0, concepts).max_dim(2);
                if special > 0 {
                    let cared = scores.narrow(2, concepts, special).max_dim(2).greater_elem(0.0).float();
                    z = z + cared.mul_scalar(adjustment);
                }
                return z.mul_scalar(scale);
            }
            Readout::Direct | Readout::Relu { .. } => {}
        }
        let (w1, b1) = match affine {
            Some(a) => {
                let w = self.w1.val() * a.inv_std.clone();
                let b = self.b1.val() - a.mean.clone().matmul(w.clone());
                (w, b)
            }
            None => (self.w1.val(), self.b1.val()),
        };
        // All heads' first layers as one [D, H * width] matrix: a single 2-D
        // matmul reads the features once instead of once per head.
        let w_flat = w1.permute([1, 0, 2]).reshape([d, h * width]);
        let z = x.matmul(w_flat).reshape([n, h, width]).swap_dims(0, 1) + b1;
        match (&self.w2, &self.b2, self.readout) {
            (Some(w2), Some(b2), Readout::Relu { any }) => {
                let a = self.middle_w.iter().zip(&self.middle_b).fold(relu(z), |a, (w, b)| relu(a.matmul(w.val()) + b.val()));
                let z = a.matmul(w2.val()) + b2.val();
                if any { Tensor::cat(vec![z.clone().max_dim(2), z], 2) } else { z }
            }
            (Some(w2), Some(b2), _) => {
                let mut a = gelu(z);
                if let Some(keep) = dropout_keep {
                    a = a * keep;
                }
                a.matmul(w2.val()) + b2.val()
            }
            _ => z,
        }
    }

    /// Copies head `i` to the host.
    pub fn head_weights(&self, i: usize, kind: HeadKind) -> HeadWeights {
        let take = |t: Tensor<3>| -> Vec<f32> {
            let dims = t.dims();
            let one = t.narrow(0, i, 1).reshape([dims[1] * dims[2]]);
            one.into_data().convert::<f32>().try_to_vec::<f32>().expect("f32 after convert")
        };
        let [_, d, width] = self.w1.val().dims();
        let outputs = match (&self.b2, self.readout) {
            (_, Readout::Prompt { outputs, .. }) => outputs,
            (_, Readout::Concepts { .. }) => 1,
            (Some(b), Readout::Relu { any }) => b.val().dims()[2] + usize::from(any),
            (Some(b), Readout::Direct) => b.val().dims()[2],
            (None, Readout::Direct | Readout::Relu { .. }) => width,
        };
        HeadWeights {
            kind,
            input_dim: d,
            outputs,
            w1: take(self.w1.val()),
            b1: take(self.b1.val()),
            w2: self.w2.as_ref().map(|w| take(w.val())),
            b2: self.b2.as_ref().map(|b| take(b.val())),
            middle: self
                .middle_w
                .iter()
                .zip(&self.middle_b)
                .map(|(w, b)| {
                    let [_, inputs, outputs] = w.val().dims();
                    Dense { inputs, outputs, w: take(w.val()), b: take(b.val()) }
                })
                .collect(),
        }
    }

    /// Sum over heads of `lambda_h / 2 * ||W_h - C_h||^2` (biases
    /// unpenalised): `centre` holds the first layers the penalty pulls
    /// toward (a zero-shot start), zero when absent.
    pub fn l2_penalty(&self, lambdas: Tensor<3>, centre: Option<&Tensor<3>>) -> Tensor<1> {
        let w1 = match centre {
            Some(c) => self.w1.val() - c.clone(),
            None => self.w1.val(),
        };
        let mut p = (w1.square() * lambdas.clone()).sum();
        if let Some(w2) = &self.w2 {
            p = p + (w2.val().square() * lambdas).sum();
        }
        p.mul_scalar(0.5)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_gelu_matches_known_values() {
        // 0.5 x (1 + erf(x / sqrt 2)) at a few points, from the closed form.
        for (x, e) in [(0.0f32, 0.0f32), (1.0, 0.841_344_7), (-1.0, -0.158_655_3), (2.0, 1.954_5), (-3.0, -0.004_049_7)] {
            assert!((gelu_host(x) - e).abs() < 1e-6, "gelu({x}) = {} != {e}", gelu_host(x));
        }
    }
}
