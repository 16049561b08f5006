//! The delivery endpoints: webhook endpoints and their deliveries (admin), recipients'
//! notices and confirmations of data subject requests.

pub mod notices;
pub mod webhooks;

use crate::delivery::DeliveryError;
use crate::http::ApiError;

impl From<DeliveryError> for ApiError {
    fn from(err: DeliveryError) -> Self {
        match err {
            DeliveryError::Storage(e) => e.into(),
            DeliveryError::Invalid { field, message } => ApiError::invalid(field, message),
            DeliveryError::NotFound => ApiError::not_found(),
            DeliveryError::Conflict(detail) => ApiError::conflict(detail),
        }
    }
}
