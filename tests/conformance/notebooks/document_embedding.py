"""AWS's Object2Vec document-embedding notebook: its preprocessing and parsing code.

Source: aws/amazon-sagemaker-examples @ 201332d363192f2759ee11d16c67aa15859b209c,
introduction_to_applying_machine_learning/object2vec_document_embedding/object2vec_document_embedding.ipynb
(removed from the repository by 711743c95, 2023-07-17).
"""
# Licensed under the Apache License, Version 2.0 (the notebooks' repository license).
# Vendored: the notebook cells named below, their definitions copied unchanged (shell and magic lines
# and the top-level statements that run the notebook's own downloads and uploads are left out).
# Not linted or type-checked (pyproject.toml): it is AWS's code as AWS wrote it.
# ruff: noqa
# mypy: ignore-errors
import json
import math
import os
import random
import re
import string
from collections import Counter, defaultdict
from itertools import chain, islice

import numpy as np

from tests.conformance.notebooks.standins import jsonlines

# ---- notebook cell 20: its definitions, verbatim
BOS_SYMBOL = "<s>"

EOS_SYMBOL = "</s>"

UNK_SYMBOL = "<unk>"

PAD_SYMBOL = "<pad>"

PAD_ID = 0

TOKEN_SEPARATOR = " "

VOCAB_SYMBOLS = [PAD_SYMBOL, UNK_SYMBOL, BOS_SYMBOL, EOS_SYMBOL]

##### utility functions for preprocessing
def get_article_iter_from_file(fname):
    with open(fname) as f:
        for article in f:
            yield article

def get_article_iter_from_channel(channel, datadir="/tmp/wiki"):
    if channel == "train":
        fname = os.path.join(datadir, "wikipedia_train250k.txt")
        return get_article_iter_from_file(fname)
    else:
        iterlist = []
        suffix_list = ["train250k.txt", "test10k.txt", "dev10k.txt", "test_basedocs.txt"]
        for suffix in suffix_list:
            fname = os.path.join(datadir, "wikipedia_" + suffix)
            iterlist.append(get_article_iter_from_file(fname))
        return chain.from_iterable(iterlist)

def readlines_from_article(article):
    return article.strip().split("\t")

def sentence_to_integers(sentence, word_dict, trim_size=None):
    """
    Converts a string of tokens to a list of integers
    """
    if not trim_size:
        return [
            word_dict[token] if token in word_dict else 0
            for token in get_tokens_from_sentence(sentence)
        ]
    else:
        integer_list = []
        for token in get_tokens_from_sentence(sentence):
            if len(integer_list) < trim_size:
                if token in word_dict:
                    integer_list.append(word_dict[token])
                else:
                    integer_list.append(0)
            else:
                break
        return integer_list

def get_tokens_from_sentence(sent):
    """
    Yields tokens from input string.

    :param line: Input string.
    :return: Iterator over tokens.
    """
    for token in sent.split():
        if len(token) > 0:
            yield normalize_token(token)

def get_tokens_from_article(article):
    iterlist = []
    for sent in readlines_from_article(article):
        iterlist.append(get_tokens_from_sentence(sent))
    return chain.from_iterable(iterlist)

def normalize_token(token):
    token = token.lower()
    if all(s.isdigit() or s in string.punctuation for s in token):
        tok = list(token)
        for i in range(len(tok)):
            if tok[i].isdigit():
                tok[i] = "0"
        token = "".join(tok)
    return token


# ---- notebook cell 21: its definitions, verbatim
def build_vocab(channel, num_words=50000, min_count=1, use_reserved_symbols=True, sort=True):
    """
    Creates a vocabulary mapping from words to ids. Increasing integer ids are assigned by word frequency,
    using lexical sorting as a tie breaker. The only exception to this are special symbols such as the padding symbol
    (PAD).

    :param num_words: Maximum number of words in the vocabulary.
    :param min_count: Minimum occurrences of words to be included in the vocabulary.
    :return: word-to-id mapping.
    """
    vocab_symbols_set = set(VOCAB_SYMBOLS)
    raw_vocab = Counter()
    for article in get_article_iter_from_channel(channel):
        article_wise_vocab_list = list()
        for token in get_tokens_from_article(article):
            if token not in vocab_symbols_set:
                article_wise_vocab_list.append(token)
        raw_vocab.update(article_wise_vocab_list)

    print("Initial vocabulary: {} types".format(len(raw_vocab)))

    # For words with the same count, they will be ordered reverse alphabetically.
    # Not an issue since we only care for consistency
    pruned_vocab = sorted(((c, w) for w, c in raw_vocab.items() if c >= min_count), reverse=True)
    print("Pruned vocabulary: {} types (min frequency {})".format(len(pruned_vocab), min_count))

    # truncate the vocabulary to fit size num_words (only includes the most frequent ones)
    vocab = islice((w for c, w in pruned_vocab), num_words)

    if sort:
        # sort the vocabulary alphabetically
        vocab = sorted(vocab)
    if use_reserved_symbols:
        vocab = chain(VOCAB_SYMBOLS, vocab)

    word_to_id = {word: idx for idx, word in enumerate(vocab)}

    print("Final vocabulary: {} types".format(len(word_to_id)))

    if use_reserved_symbols:
        # Important: pad symbol becomes index 0
        assert word_to_id[PAD_SYMBOL] == PAD_ID

    return word_to_id


# ---- notebook cell 24: its definitions, verbatim
# Functions to build training data
# Tokenize wiki articles to (sentence, document) pairs
def generate_sent_article_pairs_from_single_article(article, word_dict):
    sent_list = readlines_from_article(article)
    art_len = len(sent_list)
    idx = random.randint(0, art_len - 1)
    wrapper_text_idx = list(range(idx)) + list(range((idx + 1) % art_len, art_len))
    wrapper_text_list = sent_list[:idx] + sent_list[(idx + 1) % art_len : art_len]
    wrapper_tokens = []
    for sent1 in wrapper_text_list:
        wrapper_tokens += sentence_to_integers(sent1, word_dict)
    sent_tokens = sentence_to_integers(sent_list[idx], word_dict)
    yield {"in0": sent_tokens, "in1": wrapper_tokens, "label": 1}

def generate_sent_article_pairs_from_single_file(fname, word_dict):
    with open(fname) as reader:
        iter_list = []
        for article in reader:
            iter_list.append(generate_sent_article_pairs_from_single_article(article, word_dict))
    return chain.from_iterable(iter_list)


# ---- notebook cell 27: its definitions, verbatim
def generate_pos_neg_samples_from_single_article(
    word_dict, article_idx, article_buffer, negative_sampling_rate=1
):
    sample_list = []
    # generate positive samples
    sent_list = readlines_from_article(article_buffer[article_idx])
    art_len = len(sent_list)
    idx = random.randint(0, art_len - 1)
    wrapper_text_idx = list(range(idx)) + list(range((idx + 1) % art_len, art_len))
    wrapper_text_list = sent_list[:idx] + sent_list[(idx + 1) % art_len : art_len]
    wrapper_tokens = []
    for sent1 in wrapper_text_list:
        wrapper_tokens += sentence_to_integers(sent1, word_dict)
    sent_tokens = sentence_to_integers(sent_list[idx], word_dict)
    sample_list.append({"in0": sent_tokens, "in1": wrapper_tokens, "label": 1})
    # generate negative sample
    buff_len = len(article_buffer)
    sampled_inds = np.random.choice(
        list(range(article_idx)) + list(range((article_idx + 1) % buff_len, buff_len)),
        size=negative_sampling_rate,
    )
    for n_idx in sampled_inds:
        other_article = article_buffer[n_idx]
        context_list = readlines_from_article(other_article)
        context_tokens = []
        for sent2 in context_list:
            context_tokens += sentence_to_integers(sent2, word_dict)
        sample_list.append({"in0": sent_tokens, "in1": context_tokens, "label": 0})
    return sample_list


# ---- notebook cell 47: its definitions, verbatim
def generate_tokenized_articles_from_single_file(fname, word_dict):
    for article in get_article_iter_from_file(fname):
        integer_article = []
        for sent in readlines_from_article(article):
            integer_article += sentence_to_integers(sent, word_dict)
        yield integer_article


# ---- notebook cell 48: its definitions, verbatim
def read_jsonline(fname):
    """
    Reads jsonline files and returns iterator
    """
    with jsonlines.open(fname) as reader:
        for line in reader:
            yield line

def send_payload(predictor, payload):
    return predictor.predict(payload)

def write_to_jsonlines(data, fname):
    with jsonlines.open(fname, "a") as writer:
        data = data["predictions"]
        writer.write_all(data)

def eval_and_write(predictor, fname, to_fname, batch_size):
    if os.path.exists(to_fname):
        print("Removing exisiting embedding file {}".format(to_fname))
        os.remove(to_fname)
    print("Getting embedding of data in {} and store to {}...".format(fname, to_fname))
    test_data_content = list(read_jsonline(fname))
    n_test = len(test_data_content)
    n_batches = math.ceil(n_test / float(batch_size))
    start = 0
    for idx in range(n_batches):
        if idx % 10 == 0:
            print("Inference on the {}-th batch".format(idx + 1))
        end = (start + batch_size) if (start + batch_size) <= n_test else n_test
        payload = {"instances": test_data_content[start:end]}
        data = send_payload(predictor, payload)
        data = json.loads(data)
        write_to_jsonlines(data, to_fname)
        start = end

def get_embeddings(predictor, test_data_content, batch_size):
    n_test = len(test_data_content)
    n_batches = math.ceil(n_test / float(batch_size))
    start = 0
    embeddings = []
    for idx in range(n_batches):
        if idx % 10 == 0:
            print("Inference the {}-th batch".format(idx + 1))
        end = (start + batch_size) if (start + batch_size) <= n_test else n_test
        payload = {"instances": test_data_content[start:end]}
        data = send_payload(predictor, payload)
        data = json.loads(data)
        embeddings += data["predictions"]
        start = end
    return embeddings
