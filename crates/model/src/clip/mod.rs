//! CLIP, frozen: configurations, the vision and text transformers in burn,
//! weight loading from both checkpoint layouts, CLIP's preprocessing and
//! tokenizer, and the encoders that tie them to an identity.

pub mod activation;
pub mod bf16;
pub mod config;
pub mod encoder;
pub mod kernels;
pub mod load;
pub mod model;
pub mod preprocess;
pub mod text;
pub mod text_encoder;
pub mod tokenizer;

pub use config::{Activation, Preset, TextConfig, VisionConfig};
pub use encoder::{DEFAULT_MODEL, DEFAULT_REVISION, Encoder};
pub use load::{Layout, load_text_weights, load_weights};
pub use model::ClipVisionModelWithProjection;
pub use preprocess::Preprocessor;
pub use text::{ClipTextModelWithProjection, Pooling};
pub use text_encoder::TextEncoder;
pub use tokenizer::{Flavor, Tokenizer};
