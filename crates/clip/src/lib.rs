//! CLIP, frozen, as a library: configurations with presets ([`config`]),
//! the vision and text towers in burn ([`vision`], [`text`]), weight
//! loading from Hugging Face and open_clip checkpoints ([`load`]), CLIP's
//! preprocessing ([`preprocess`]) and tokenizer ([`tokenizer`]), a bf16 and int8 path
//! for the CPU ([`host`]), and the two encoders that tie a tower to its
//! weights and identity: [`ImageEncoder`] (pixels to image embeddings) and
//! [`TextEncoder`] (texts to text embeddings).
//!
//! It knows nothing of guards, heads or datasets beyond the identity an
//! embedding is recorded with; it never prints and never reads the
//! environment (Hub options come from the caller).

pub mod activation;
pub mod block;
pub mod config;
pub mod error;
pub mod host;
pub mod image_encoder;
pub mod load;
pub mod preprocess;
pub mod text;
pub mod text_encoder;
pub mod tokenizer;
pub mod vision;

pub use config::{Activation, Preset, TextConfig, VisionConfig};
pub use error::{Error, Result};
pub use image_encoder::{Checkpoint, DEFAULT_MODEL, DEFAULT_REVISION, ImageEncoder, l2_rows, l2_rows_host};
pub use load::{Layout, load_text_weights, load_weights};
pub use preprocess::Preprocessor;
pub use text::{ClipTextModelWithProjection, Pooling};
pub use text_encoder::TextEncoder;
pub use tokenizer::{Flavor, Tokenizer};
pub use vision::ClipVisionModelWithProjection;
