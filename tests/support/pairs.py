"""Scored pairs the evaluation tests share: a small set, English and Arabic-English."""

from __future__ import annotations

PAIRS = [
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Central bank cuts interest rates by half a point",
        "text2": "The central bank lowered its key rate by 50 basis points",
        "Overall": 1.0,
    },
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Central bank cuts interest rates by half a point",
        "text2": "Local football club wins the national cup final",
        "Overall": 4.0,
    },
    {
        "lang1": "en",
        "lang2": "en",
        "text1": "Wildfire forces thousands to flee in the north",
        "text2": "Thousands evacuated as forest fire spreads across northern hills",
        "Overall": 1.3,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "حريق غابات يجبر الآلاف على الفرار",
        "text1": "امتد الحريق في الشمال.",
        "title2": "Wildfire forces thousands to flee",
        "text2": "The fire spread in the north.",
        "Overall": 1.0,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "حريق غابات يجبر الآلاف على الفرار",
        "text1": "امتد الحريق في الشمال.",
        "title2": "New smartphone goes on sale",
        "text2": "The phone costs 500 dollars.",
        "Overall": 4.0,
    },
    {
        "lang1": "ar",
        "lang2": "en",
        "title1": "افتتاح معرض الكتاب",
        "text1": "افتتح المعرض أبوابه اليوم.",
        "title2": "Book fair opens its doors",
        "text2": "Publishers from 30 countries attend.",
        "Overall": 1.5,
    },
]
