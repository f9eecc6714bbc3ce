//! The pages' part of the OpenAPI document: the one API route they add,
//! the thumbnail (the HTML pages themselves are not API operations).

use utoipa::OpenApi;

use crate::http::schemas::ErrorBody;

#[derive(OpenApi)]
#[openapi(paths(super::thumbnail::serve), components(schemas(ErrorBody)))]
pub struct WebApi;
