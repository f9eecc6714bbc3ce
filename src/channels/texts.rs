//! The bot's own words, in Russian and English. The language comes from
//! Telegram's `language_code` where there is one, else from the script of
//! the shopper's text (WhatsApp sends no language).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ru,
    En,
}

impl Lang {
    pub fn as_str(self) -> &'static str {
        match self {
            Lang::Ru => "ru",
            Lang::En => "en",
        }
    }

    pub fn parse(s: &str) -> Option<Lang> {
        match s {
            "ru" => Some(Lang::Ru),
            "en" => Some(Lang::En),
            _ => None,
        }
    }

    /// From a Telegram `language_code` (`ru`, `ru-RU`, `en-US`, …):
    /// Russian for Russian and the languages of its neighbours whose
    /// speakers mostly read it (Kyrgyz, Kazakh, Ukrainian, Belarusian,
    /// Uzbek, Tajik), English otherwise.
    pub fn from_code(code: &str) -> Lang {
        let base = code
            .split(['-', '_'])
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        match base.as_str() {
            "ru" | "ky" | "kk" | "uk" | "be" | "uz" | "tg" => Lang::Ru,
            _ => Lang::En,
        }
    }

    /// Russian when the text has Cyrillic letters, else `fallback`.
    pub fn from_text(text: &str, fallback: Lang) -> Lang {
        if text.chars().any(|c| ('\u{400}'..='\u{4ff}').contains(&c)) {
            Lang::Ru
        } else if text.chars().any(|c| c.is_ascii_alphabetic()) {
            Lang::En
        } else {
            fallback
        }
    }
}

/// Every sentence the bot can say, per language.
pub struct Texts {
    pub greeting: &'static str,
    pub found: &'static str,
    pub nothing_found: &'static str,
    pub no_more: &'static str,
    pub more: &'static str,
    pub new_search: &'static str,
    pub ask_again: &'static str,
    pub not_understood: &'static str,
    pub unsupported_media: &'static str,
    pub bad_photo: &'static str,
    pub no_such_number: &'static str,
    pub text_search_unavailable: &'static str,
    pub goodbye: &'static str,
    pub choose: &'static str,
    pub results_section: &'static str,
    pub link: &'static str,
    pub category: &'static str,
    pub trouble: &'static str,
}

const RU: Texts = Texts {
    greeting: "Здравствуйте! Пришлите фото товара, который ищете, или напишите, что нужно \
               (например, «кроссовки»), и я покажу похожие товары.",
    found: "Вот что я нашёл:",
    nothing_found: "Ничего не нашлось. Попробуйте другое фото или другие слова.",
    no_more: "Больше результатов нет. Пришлите новое фото или запрос.",
    more: "Ещё",
    new_search: "Новый поиск",
    ask_again: "Пришлите фото или напишите, что ищете.",
    not_understood: "Я не понял. Пришлите фото товара или напишите его название; \
                     номер из списка покажет подробности, «ещё» — следующие результаты.",
    unsupported_media: "Спасибо! Но я понимаю только фото и текст. Пришлите фото товара \
                        или напишите, что ищете.",
    bad_photo: "Не получилось прочитать это фото. Пришлите, пожалуйста, другое.",
    no_such_number: "Такого номера нет в списке. Выберите номер из результатов.",
    text_search_unavailable: "Поиск по тексту пока недоступен. Пришлите, пожалуйста, фото товара.",
    goodbye: "Спасибо, до встречи! Напишите в любой момент, чтобы начать снова.",
    choose: "Выбрать",
    results_section: "Результаты",
    link: "Ссылка",
    category: "Категория",
    trouble: "Что-то пошло не так. Попробуйте ещё раз чуть позже.",
};

const EN: Texts = Texts {
    greeting: "Hello! Send me a photo of what you are looking for, or type what you need \
               (for example, \"sneakers\"), and I will show you similar products.",
    found: "Here is what I found:",
    nothing_found: "Nothing found. Try another photo or other words.",
    no_more: "There are no more results. Send a new photo or query.",
    more: "More",
    new_search: "New search",
    ask_again: "Send a photo or type what you are looking for.",
    not_understood: "Sorry, I did not understand. Send a photo of a product or type its name; \
                     a number from the list shows its details, \"more\" the next results.",
    unsupported_media: "Thank you! But I only understand photos and text. Send a photo of a \
                        product or type what you are looking for.",
    bad_photo: "I could not read that photo. Please send another one.",
    no_such_number: "There is no such number in the list. Pick a number from the results.",
    text_search_unavailable: "Text search is not available yet. Please send a photo of the product.",
    goodbye: "Thank you, goodbye! Write any time to start again.",
    choose: "Choose",
    results_section: "Results",
    link: "Link",
    category: "Category",
    trouble: "Something went wrong. Please try again a little later.",
};

pub fn texts(lang: Lang) -> &'static Texts {
    match lang {
        Lang::Ru => &RU,
        Lang::En => &EN,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_follows_the_code_then_the_script() {
        assert_eq!(Lang::from_code("ru-RU"), Lang::Ru);
        assert_eq!(Lang::from_code("ky"), Lang::Ru);
        assert_eq!(Lang::from_code("en-US"), Lang::En);
        assert_eq!(Lang::from_code("de"), Lang::En);
        assert_eq!(Lang::from_text("кроссовки", Lang::En), Lang::Ru);
        assert_eq!(Lang::from_text("sneakers", Lang::Ru), Lang::En);
        assert_eq!(Lang::from_text("42", Lang::Ru), Lang::Ru);
        assert_ne!(texts(Lang::Ru).greeting, texts(Lang::En).greeting);
    }
}
