"""AWS's Object2Vec sentence-similarity notebook: its preprocessing and parsing code.

Source: aws/amazon-sagemaker-examples @ 18fc469ba7d7f520bc7fe27d5ea2f3b13d3f1c1f,
introduction_to_amazon_algorithms/object2vec_sentence_similarity/object2vec_sentence_similarity.ipynb
(the same code is at build_and_train_models/sm-introduction_to_object2vec_sentence_similarity/ on the
repository's newest commit, 2d519b52c3a2c2361f2b87f0d3de46fd6c0232a5).
"""
# Licensed under the Apache License, Version 2.0 (the notebooks' repository license).
# Vendored: the notebook cells named below, their definitions copied unchanged (shell and magic lines
# and the top-level statements that run the notebook's own downloads and uploads are left out).
# Not linted or type-checked (pyproject.toml): it is AWS's code as AWS wrote it.
# ruff: noqa
# mypy: ignore-errors
import io
import json
import os
import sys
from collections import Counter
from itertools import chain, islice

import numpy as np

from tests.conformance.notebooks.standins import TreebankWordTokenizer, jsonlines

# notebook cell 13 (the download cell): the directory names its functions default to
SNLI_PATH = "snli_1.0"
STS_PATH = "sts2016-english-with-gs-v1.0"

# ---- notebook cell 16: its definitions, verbatim
BOS_SYMBOL = "<s>"

EOS_SYMBOL = "</s>"

UNK_SYMBOL = "<unk>"

PAD_SYMBOL = "<pad>"

PAD_ID = 0

TOKEN_SEPARATOR = " "

VOCAB_SYMBOLS = [PAD_SYMBOL, UNK_SYMBOL, BOS_SYMBOL, EOS_SYMBOL]

LABEL_DICT = {"entailment": 0, "neutral": 1, "contradiction": 2}


# ---- notebook cell 17: its definitions, verbatim
def read_jsonline(fname):
    """
    Reads jsonline files and returns iterator
    """
    with jsonlines.open(fname) as reader:
        for line in reader:
            yield line

def sentence_to_integers(sentence, tokenizer, word_dict):
    """
    Converts a string of tokens to a list of integers
    TODO: Better handling of the case
          where token is not in word_dict
    """
    return [word_dict[token] for token in get_tokens(sentence, tokenizer) if token in word_dict]

def get_tokens(line, tokenizer):
    """
    Yields tokens from input string.

    :param line: Input string.
    :return: Iterator over tokens.
    """
    for token in tokenizer.tokenize(line):
        if len(token) > 0:
            yield token

def get_tokens_from_snli(input_dict, tokenizer):
    iter_list = list()
    for sentence_key in ["sentence1", "sentence2"]:
        sentence = input_dict[sentence_key]
        iter_list.append(get_tokens(sentence, tokenizer))
    return chain(iter_list[0], iter_list[1])

def get_tokens_from_sts(input_sentence_pair, tokenizer):
    iter_list = list()
    for s in input_sentence_pair:
        iter_list.append(get_tokens(s, tokenizer))
    return chain(iter_list[0], iter_list[1])

def resolve_snli_label(raw_label):
    """
    Converts raw label to integer
    """
    return LABEL_DICT[raw_label]


# ---- notebook cell 19: its definitions, verbatim
def build_vocab(
    data_iter, dataname="snli", num_words=50000, min_count=1, use_reserved_symbols=True, sort=True
):
    """
    Creates a vocabulary mapping from words to ids. Increasing integer ids are assigned by word frequency,
    using lexical sorting as a tie breaker. The only exception to this are special symbols such as the padding symbol
    (PAD).

    :param data_iter: Sequence of sentences containing whitespace delimited tokens.
    :param num_words: Maximum number of words in the vocabulary.
    :param min_count: Minimum occurrences of words to be included in the vocabulary.
    :return: word-to-id mapping.
    """
    vocab_symbols_set = set(VOCAB_SYMBOLS)
    tokenizer = TreebankWordTokenizer()
    if dataname == "snli":
        raw_vocab = Counter(
            token
            for line in data_iter
            for token in get_tokens_from_snli(line, tokenizer)
            if token not in vocab_symbols_set
        )
    elif dataname == "sts":
        raw_vocab = Counter(
            token
            for line in data_iter
            for token in get_tokens_from_sts(line, tokenizer)
            if token not in vocab_symbols_set
        )
    else:
        raise NameError(f"Data name {dataname} is not recognized!")

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


# ---- notebook cell 21: its definitions, verbatim
def convert_snli_to_integers(data_iter, word_to_id, dirname=SNLI_PATH, fname_suffix=""):
    """
    Go through snli jsonline file line by line and convert sentences to list of integers
    - convert entailments to labels
    """
    fname = "snli-integer-" + fname_suffix + ".jsonl"
    path = os.path.join(dirname, fname)
    tokenizer = TreebankWordTokenizer()
    count = 0
    max_seq_length = 0
    with jsonlines.open(path, mode="w") as writer:
        for in_dict in data_iter:
            # in_dict = json.loads(line)
            out_dict = dict()
            rlabel = in_dict["gold_label"]
            if rlabel in LABEL_DICT:
                rsentence1 = in_dict["sentence1"]
                rsentence2 = in_dict["sentence2"]
                for idx, sentence in enumerate([rsentence1, rsentence2]):
                    # print(count, sentence)
                    s = sentence_to_integers(sentence, tokenizer, word_to_id)
                    out_dict[f"in{idx}"] = s
                    count += 1
                    max_seq_length = max(len(s), max_seq_length)
                out_dict["label"] = resolve_snli_label(rlabel)
                writer.write(out_dict)
            else:
                count += 1
    print(f"There are in total {count} invalid labels")
    print(f"The max length of converted sequence is {max_seq_length}")


# ---- notebook cell 23: its definitions, verbatim (left out: 1 top-level statement(s) that run the notebook's own steps)
def make_snli_full_vocab(dirname=SNLI_PATH, force=True):
    vocab_path = os.path.join(dirname, "snli-vocab.json")
    if not os.path.exists(vocab_path) or force:
        data_iter_list = list()
        for fname_suffix in ["train", "test", "dev"]:
            fname = "snli_1.0_" + fname_suffix + ".jsonl"
            data_iter_list.append(read_jsonline(os.path.join(dirname, fname)))
        data_iter = chain(data_iter_list[0], data_iter_list[1], data_iter_list[2])
        with open(vocab_path, "w") as write_file:
            word_to_id = build_vocab(
                data_iter, num_words=50000, min_count=1, use_reserved_symbols=False, sort=True
            )
            json.dump(word_to_id, write_file)


# ---- notebook cell 25: its definitions, verbatim (left out: 1 top-level statement(s) that run the notebook's own steps)
def make_snli_data(dirname=SNLI_PATH, vocab_file="snli-vocab.json", outfile_suffix="", force=True):
    for fname_suffix in ["train", "test", "validation"]:
        outpath = os.path.join(dirname, f"snli-integer-{fname_suffix}-{outfile_suffix}.jsonl")
        if not os.path.exists(outpath) or force:
            if fname_suffix == "validation":
                inpath = os.path.join(dirname, f"snli_1.0_dev.jsonl")
            else:
                inpath = os.path.join(dirname, f"snli_1.0_{fname_suffix}.jsonl")
            data_iter = read_jsonline(inpath)
            vocab_path = os.path.join(dirname, vocab_file)
            with open(vocab_path, "r") as f:
                word_to_id = json.load(f)
            convert_snli_to_integers(
                data_iter,
                word_to_id,
                dirname=dirname,
                fname_suffix=f"{fname_suffix}-{outfile_suffix}",
            )


# ---- notebook cell 28: its definitions, verbatim (left out: 3 top-level statement(s) that run the notebook's own steps)
def get_vocab_size(vocab_path):
    with open(vocab_path) as f:
        word_to_id = json.load(f)
        return len(word_to_id.keys())


# ---- notebook cell 46: its definitions, verbatim
def calc_prediction_accuracy(predictions, labels):
    loss = 0
    for idx, s_and_l in enumerate(zip(predictions["predictions"], labels)):
        score, label = s_and_l
        plabel = np.argmax(score["scores"])
        loss += int(plabel != label["label"])
    return 1 - loss / len(labels)


# ---- notebook cell 52: its definitions, verbatim
def loadSTSFile(fpath=STS_PATH, datasets=["question-question"]):
    data = {}
    for dataset in datasets:
        sent1 = []
        sent2 = []
        for line in (
            io.open(fpath + f"/STS2016.input.{dataset}.txt", encoding="utf8").read().splitlines()
        ):
            splitted = line.split("\t")
            sent1.append(splitted[0])
            sent2.append(splitted[1])

        raw_scores = np.array(
            [
                x
                for x in io.open(fpath + f"/STS2016.gs.{dataset}.txt", encoding="utf8")
                .read()
                .splitlines()
            ]
        )

        not_empty_idx = raw_scores != ""

        gs_scores = [float(x) for x in raw_scores[not_empty_idx]]
        sent1 = np.array(sent1)[not_empty_idx]
        sent2 = np.array(sent2)[not_empty_idx]

        data[dataset] = (sent1, sent2, gs_scores)

    return data

def get_sts_data_iterator(fpath=STS_PATH, datasets=["question-question"]):
    data = loadSTSFile(fpath, datasets)
    for dataset in datasets:
        sent1, sent2, _ = data[dataset]
        for s1, s2 in zip(sent1, sent2):
            yield [s1, s2]

def convert_single_sts_to_integers(s1, s2, gs_label, tokenizer, word_dict):
    converted = []
    for s in [s1, s2]:
        converted.append(sentence_to_integers(s, tokenizer, word_dict))
    converted.append(gs_label)
    return converted

def convert_sts_to_integers(sent1, sent2, gs_labels, tokenizer, word_dict):
    for s1, s2, gs in zip(sent1, sent2, gs_labels):
        yield convert_single_sts_to_integers(s1, s2, gs, tokenizer, word_dict)

def make_sts_data(
    fpath=STS_PATH,
    vocab_path_prefix=SNLI_PATH,
    vocab_name="snli-vocab.json",
    dataset="question-question",
):
    """
    prepare test data; example: test_data['left'] = [{'in0':[1,2,3]}, {'in0':[2,10]}, ...]
    """
    test_data = {"left": [], "right": []}
    test_label = list()
    tokenizer = TreebankWordTokenizer()
    vocab_path = os.path.join(vocab_path_prefix, vocab_name)
    with open(vocab_path) as f:
        word_dict = json.load(f)
    data = loadSTSFile(fpath=fpath, datasets=[dataset])
    for s1, s2, gs in convert_sts_to_integers(*data[dataset], tokenizer, word_dict):
        test_data["left"].append({"in1": s1})
        test_data["right"].append({"in1": s2})
        test_label.append(gs)
    return test_data, test_label


# ---- notebook cell 55: its definitions, verbatim (left out: 1 top-level statement(s) that run the notebook's own steps)
def make_sts_full_vocab(dirname=STS_PATH, datasets=["question-question"], force=True):
    vocab_path = os.path.join(dirname, "sts-vocab.json")
    if not os.path.exists(vocab_path) or force:
        data_iter = get_sts_data_iterator(dirname, datasets)
        with open(vocab_path, "w") as write_file:
            word_to_id = build_vocab(
                data_iter,
                dataname="sts",
                num_words=50000,
                min_count=1,
                use_reserved_symbols=False,
                sort=True,
            )

            json.dump(word_to_id, write_file)


# ---- notebook cell 57: its definitions, verbatim
from scipy.stats import pearsonr, spearmanr

import math

def wrap_sts_test_data_for_eval(
    fpath=STS_PATH, vocab_path_prefix=".", vocab_name="all_vocab.json", dataset="question-question"
):
    """
    Prepare data for evaluation
    """
    test_data, test_label = make_sts_data(fpath, vocab_path_prefix, vocab_name, dataset)
    input1 = {"instances": test_data["left"]}
    input2 = {"instances": test_data["right"]}
    return [input1, input2, test_label]

def get_cosine_similarity(vec1, vec2):
    assert len(vec1) == len(vec2), "Vector dimension mismatch!"
    norm1 = 0
    norm2 = 0
    inner_product = 0
    for v1, v2 in zip(vec1, vec2):
        norm1 += v1 ** 2
        norm2 += v2 ** 2
        inner_product += v1 * v2
    return inner_product / math.sqrt(norm1 * norm2)

def eval_corr(predictor, eval_data):
    """
    input:
    param: predictor: Sagemaker deployed model
    eval_data: a list of [input1, inpu2, gs_scores]
    Evaluate pearson and spearman correlation between algorithm's embedding and gold standard
    """
    sys_scores = []
    input1, input2, gs_scores = (
        eval_data[0],
        eval_data[1],
        eval_data[2],
    )  # get this from make_sts_data
    embeddings = []
    for data in [input1, input2]:
        prediction = predictor.predict(data)
        embeddings.append(prediction["predictions"])

    for emb_pair in zip(embeddings[0], embeddings[1]):
        emb1 = emb_pair[0]["embeddings"]
        emb2 = emb_pair[1]["embeddings"]
        sys_scores.append(get_cosine_similarity(emb1, emb2))  # TODO: implement this

    results = {
        "pearson": pearsonr(sys_scores, gs_scores),
        "spearman": spearmanr(sys_scores, gs_scores),
        "nsamples": len(sys_scores),
    }
    return results


# ---- notebook cell 61: its definitions, verbatim (left out: 2 top-level statement(s) that run the notebook's own steps)
def combine_vocabulary(vocab_paths, new_vocab_path):
    wd_count = 0
    all_vocab = set()
    new_vocab = {}
    for vocab_path in vocab_paths:
        with open(vocab_path) as f:
            vocab = json.load(f)
            all_vocab = all_vocab.union(vocab.keys())
    for idx, wd in enumerate(all_vocab):
        new_vocab[wd] = idx
    print(f"The new vocabulary size is {idx+1}")
    with open(new_vocab_path, "w") as f:
        json.dump(new_vocab, f)

new_vocab_path = "all_vocab.json"


# ---- notebook cell 66: its definitions, verbatim (left out: 2 top-level statement(s) that run the notebook's own steps)
import json

def trim_w2v(in_path, out_path, word_dict):
    # create word_vec with w2v vectors
    lines = []
    with open(out_path, "w") as outfile:
        with open(in_path) as f:
            for line in f:
                word, vec = line.split(" ", 1)
                if word in word_dict:
                    lines.append(line)

        print("Found %s(/%s) words with w2v vectors" % (len(lines), len(word_dict)))
        outfile.writelines(lines)

in_path = "/tmp/GloVe/glove.840B.300d.txt"

out_path = "GloVe/glove.840B-trim.txt"
