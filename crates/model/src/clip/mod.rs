//! CLIP's image tower, frozen: configuration, the vision transformer in burn,
//! weight loading from both checkpoint layouts, and CLIP's preprocessing.
//! Module and field names follow the Hugging Face implementation
//! (`CLIPVisionModelWithProjection`), so its checkpoint keys map one to one.

pub mod activation;
pub mod config;
pub mod model;
pub mod preprocess;
pub mod weights;

pub use config::{Activation, VisionConfig};
pub use model::ClipVisionModelWithProjection;
pub use preprocess::Preprocessor;
pub use weights::{Encoder, Layout};
