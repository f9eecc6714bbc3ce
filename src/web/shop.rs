//! The shopper page (`/`: browse the catalog, search by photo, filter by
//! category and price) and a product's page (`/products/{id}`: the product
//! and its similar products). Every catalog value goes through maud, which
//! escapes it; the photo search renders its results in `shop.js` with
//! `textContent`, never as HTML.

use axum::{
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::{PAGE_SIZE, WebState};
use crate::{
    catalog::{ProductRow, ProductStatus},
    search::{SearchError, SearchParams, SearchResult},
};

/// The most products the browse grid shows at once ("more" adds a page).
const MAX_SHOWN: usize = 480;
/// Similar products on a product's page.
const SIMILAR: usize = 12;

/// The page shell: own stylesheet and script only.
pub(crate) fn layout(title: &str, script: Option<&str>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) }
                link rel="stylesheet" href="/assets/vitrine.css";
                @if let Some(s) = script {
                    script src={ "/assets/" (s) } defer {}
                }
            }
            body {
                header.top {
                    a.brand href="/" { "Vitrine" }
                    span.tagline { "find products that look like this" }
                }
                main { (body) }
            }
        }
    }
}

/// Filters as the page's form sends them: every field text, so that a bad
/// value is shown back as a message instead of a bare 400.
#[derive(Debug, Default, Deserialize)]
pub struct HomeQuery {
    category: Option<String>,
    min_price: Option<String>,
    max_price: Option<String>,
    /// How many products to show (grows by a page with "more").
    n: Option<usize>,
}

struct Filters {
    category: Option<String>,
    min_price: Option<f64>,
    max_price: Option<f64>,
    problem: Option<String>,
}

fn price(field: &str, v: &Option<String>, problem: &mut Option<String>) -> Option<f64> {
    let v = v.as_deref().map(str::trim).filter(|v| !v.is_empty())?;
    match v.parse::<f64>() {
        Ok(p) if p.is_finite() => Some(p),
        _ => {
            *problem = Some(format!("{field} must be a number"));
            None
        }
    }
}

impl HomeQuery {
    fn filters(&self) -> Filters {
        let mut problem = None;
        let min_price = price("The lowest price", &self.min_price, &mut problem);
        let max_price = price("The highest price", &self.max_price, &mut problem);
        let (min_price, max_price) = match (min_price, max_price) {
            (Some(lo), Some(hi)) if lo > hi => {
                problem = Some("The lowest price is above the highest".into());
                (None, None)
            }
            pair => pair,
        };
        Filters {
            category: self.category.clone().filter(|c| !c.is_empty()),
            min_price,
            max_price,
            problem,
        }
    }
}

fn money(price: Option<f64>, currency: Option<&str>) -> String {
    match price {
        Some(p) => format!("{p:.2} {}", currency.unwrap_or(""))
            .trim_end()
            .to_string(),
        None => String::new(),
    }
}

fn thumb_url(id: &str) -> String {
    format!("/api/v1/products/{}/thumbnail", urlencode(id))
}

fn product_url(id: &str) -> String {
    format!("/products/{}", urlencode(id))
}

/// Percent-encodes a path segment (product ids are the marketplace's).
fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

/// One card of the grid; `anchor` marks where a "more" page starts.
fn card(
    id: &str,
    title: Option<&str>,
    price: String,
    score: Option<f32>,
    anchor: Option<usize>,
) -> Markup {
    let title = title.unwrap_or(id);
    html! {
        a.card href=(product_url(id)) id=[anchor.map(|i| format!("item-{i}"))] {
            img src=(thumb_url(id)) alt=(title) loading="lazy" width="160" height="160";
            span.title { (title) }
            span.price { (price) }
            @if let Some(s) = score { span.score { "match " (format!("{:.0}%", s * 100.0)) } }
        }
    }
}

fn filter_form(categories: &[String], f: &Filters, q: &HomeQuery) -> Markup {
    html! {
        form #filters.filters method="get" action="/" {
            label { "Category "
                select name="category" {
                    option value="" { "All" }
                    @for c in categories {
                        option value=(c) selected[f.category.as_deref() == Some(c.as_str())] { (c) }
                    }
                }
            }
            label { "Price from "
                input name="min_price" type="number" min="0" step="any" inputmode="decimal"
                    value=[q.min_price.as_deref()] placeholder="any";
            }
            label { "to "
                input name="max_price" type="number" min="0" step="any" inputmode="decimal"
                    value=[q.max_price.as_deref()] placeholder="any";
            }
            button type="submit" { "Apply" }
        }
    }
}

/// `GET /`: the catalog, newest first, filtered; the photo search on top.
pub async fn home(State(st): State<WebState>, Query(q): Query<HomeQuery>) -> Response {
    let f = q.filters();
    let shown = q.n.unwrap_or(PAGE_SIZE).clamp(PAGE_SIZE, MAX_SHOWN);
    let categories = st.products.categories().await;
    // One more than shown, to know whether "more" has anything to add.
    let rows = st
        .products
        .browse(
            f.category.as_deref(),
            f.min_price,
            f.max_price,
            0,
            shown as i64 + 1,
        )
        .await;
    let (categories, mut rows) = match (categories, rows) {
        (Ok(c), Ok(r)) => (c, r),
        (Err(e), _) | (_, Err(e)) => {
            tracing::error!(error = %e, "shopper page: the catalog cannot be read");
            return unavailable();
        }
    };
    let has_more = rows.len() > shown;
    rows.truncate(shown);
    let more_href = {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("category", f.category.clone()),
            ("min_price", q.min_price.clone()),
            ("max_price", q.max_price.clone()),
        ] {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                s.append_pair(k, &v);
            }
        }
        s.append_pair("n", &(shown + PAGE_SIZE).to_string());
        format!("/?{}#item-{shown}", s.finish())
    };
    let body = html! {
        section.search {
            form #photo.drop method="post" enctype="multipart/form-data" {
                label.dropzone for="photo-file" {
                    img #photo-preview alt="" hidden;
                    span { "Drop a photo here, or " u { "choose one" } }
                    input #photo-file type="file" name="image" accept="image/*";
                }
            }
            (filter_form(&categories, &f, &q))
            @if let Some(p) = &f.problem { p.problem role="alert" { (p) } }
            p #status.status role="status" aria-live="polite" {}
        }
        section.results {
            h2 #results-title { @if rows.is_empty() { "No products yet" } @else { "The catalog" } }
            @if rows.is_empty() {
                p.empty { "Nothing is indexed that matches. Products appear here once their images are embedded." }
            }
            div #grid.grid {
                @for (i, p) in rows.iter().enumerate() {
                    (card(&p.product_id, p.title.as_deref(), money(p.price, p.currency.as_deref()),
                        None, (i > 0 && i % PAGE_SIZE == 0).then_some(i)))
                }
            }
            @if has_more { a #more.more href=(more_href) { "More" } }
            button #more-results.more type="button" hidden { "More" }
        }
    };
    layout(
        "Vitrine: find products that look like this",
        Some("shop.js"),
        body,
    )
    .into_response()
}

fn unavailable() -> Response {
    let body =
        html! { p.problem { "The catalog cannot be read right now. Try again in a moment." } };
    (
        StatusCode::SERVICE_UNAVAILABLE,
        layout("Vitrine: unavailable", None, body),
    )
        .into_response()
}

fn product_facts(p: &ProductRow) -> Markup {
    html! {
        div.product {
            img.big src=(thumb_url(&p.product_id)) alt=(p.title.as_deref().unwrap_or(&p.product_id)) width="320" height="320";
            div.facts {
                h1 { (p.title.as_deref().unwrap_or(&p.product_id)) }
                p.price { (money(p.price, p.currency.as_deref())) }
                @if let Some(c) = &p.category {
                    p { "Category: " a href={ "/?category=" (urlencode(c)) } { (c) } }
                }
                @if let Some(d) = &p.description { p.description { (d) } }
                @if p.status != ProductStatus::Indexed {
                    p.problem { "Not searchable yet: " (p.status.as_str())
                        @if let Some(e) = &p.error { " (" (e) ")" } }
                }
            }
        }
    }
}

/// `GET /products/{id}`: the product and the products that look like it.
pub async fn product(State(st): State<WebState>, Path(id): Path<String>) -> Response {
    let row = match st.products.get(&id).await {
        Ok(Some(p)) if p.status != ProductStatus::Deleted => p,
        Ok(_) => {
            let body = html! {
                h1 { "No such product" }
                p { "Nothing is known as " q { (id) } ". " a href="/" { "Back to the catalog" } }
            };
            return (
                StatusCode::NOT_FOUND,
                layout("Vitrine: not found", None, body),
            )
                .into_response();
        }
        Err(e) => {
            tracing::error!(error = %e, "product page: the catalog cannot be read");
            return unavailable();
        }
    };
    let params = SearchParams {
        limit: Some(SIMILAR),
        ..SearchParams::default()
    };
    let similar: Result<Vec<SearchResult>, String> = match st.search.similar_to(&id, &params).await
    {
        Ok(r) => Ok(r),
        Err(SearchError::NotIndexed(_)) => {
            Err("Similar products appear once this one is indexed.".into())
        }
        Err(e) => {
            tracing::error!(error = %e, "product page: similar products failed");
            Err("Similar products cannot be found right now.".into())
        }
    };
    let title = row.title.clone().unwrap_or_else(|| row.product_id.clone());
    let body = html! {
        p.back { a href="/" { "← The catalog" } }
        (product_facts(&row))
        section.results {
            h2 { "Similar products" }
            @match &similar {
                Ok(list) if list.is_empty() => { p.empty { "Nothing similar yet." } }
                Ok(list) => {
                    div #grid.grid {
                        @for r in list {
                            (card(&r.product_id, r.title.as_deref(), money(r.price, r.currency.as_deref()), Some(r.score), None))
                        }
                    }
                }
                Err(why) => { p.empty { (why) } }
            }
        }
    };
    layout(&format!("{title} · Vitrine"), Some("shop.js"), body).into_response()
}
