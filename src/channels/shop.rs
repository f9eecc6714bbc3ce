//! The core calls the bots make: search by photo and by text, and turning
//! results into [`Item`]s with a picture and a link. The text search is in
//! one function, [`Shop::by_text`].

use bytes::Bytes;

use super::{conversation::Input, reply::Item};
use crate::{
    catalog::ProductStore,
    config::ChannelsSettings,
    embed::{ImageFetcher, ImageRef},
    inbox::HandlerError,
    search::{SearchError, SearchParams, SearchResult, SearchService},
};

/// How many results one search keeps for "more": this many pages.
const PAGES: usize = 3;

#[derive(Clone)]
pub struct Shop {
    search: SearchService,
    products: ProductStore,
    fetcher: ImageFetcher,
    settings: ChannelsSettings,
}

impl Shop {
    pub fn new(core: &crate::provider::Core) -> Self {
        Self {
            search: core.search.clone(),
            products: ProductStore::new(core.db.clone()),
            fetcher: core.fetcher.clone(),
            settings: core.settings.channels.clone(),
        }
    }

    /// Products per page, within what both messengers can show.
    pub fn per_page(&self) -> usize {
        self.settings.results.clamp(2, 9)
    }

    fn params(&self) -> SearchParams {
        SearchParams {
            limit: Some(self.per_page() * PAGES),
            ..SearchParams::default()
        }
    }

    /// Searches with a photo: [`Input::Found`], or [`Input::BadPhoto`] when
    /// it is not a readable image.
    pub async fn by_image(&self, bytes: Bytes) -> Result<Input, HandlerError> {
        match self.search.by_image(bytes, &self.params()).await {
            Ok(page) => Ok(Input::Found(self.items(page.results).await?)),
            Err(SearchError::Image(e)) => {
                tracing::info!(error = %e, "a shopper's photo is not a readable image");
                Ok(Input::BadPhoto)
            }
            Err(e) => Err(HandlerError::transient("the search failed").with_detail(e.to_string())),
        }
    }

    /// Searches with free text ([`SearchService::text`]). A query the text
    /// search refuses (no searchable words) is not understood.
    pub async fn by_text(&self, query: &str) -> Result<Input, HandlerError> {
        match self.search.text(query, &self.params()).await {
            Ok(page) => Ok(Input::Found(self.items(page.results).await?)),
            Err(SearchError::InvalidQuery(_) | SearchError::InvalidFilter(_)) => Ok(Input::Unclear),
            Err(e) => Err(HandlerError::transient("the search failed").with_detail(e.to_string())),
        }
    }

    async fn items(&self, found: Vec<SearchResult>) -> Result<Vec<Item>, HandlerError> {
        let mut items = Vec::with_capacity(found.len());
        for r in found {
            let row = self.products.get(&r.product_id).await.map_err(|e| {
                HandlerError::transient("the product database is unavailable")
                    .with_detail(e.to_string())
            })?;
            // Only a picture a messenger can fetch itself: http(s), not a
            // local file or an S3 key.
            let image_url = row
                .and_then(|p| p.image_ref)
                .and_then(|r| self.fetcher.resolve(&ImageRef::from_stored(&r)).ok())
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .map(String::from);
            items.push(Item {
                link: self.settings.product_link(&r.product_id),
                product_id: r.product_id,
                title: r.title,
                category: r.category,
                price: r.price,
                currency: r.currency,
                image_url,
            });
        }
        Ok(items)
    }
}
