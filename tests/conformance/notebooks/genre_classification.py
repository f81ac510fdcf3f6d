"""AWS's Object2Vec multi-label genre-classification notebook: its preprocessing and parsing code.

Source: aws/amazon-sagemaker-examples @ 4e7e8957d1357111d37124b0bc2440b269ed21ac (the parent of
da84be975, which removed it), introduction_to_amazon_algorithms/
object2vec_multilabel_genre_classification/object2vec_multilabel_genre_classification.ipynb
"""
# Licensed under the Apache License, Version 2.0 (the notebooks' repository license).
# Vendored: the notebook cells named below, their definitions copied unchanged (shell and magic lines
# and the top-level statements that run the notebook's own downloads and uploads are left out).
# Not linted or type-checked (pyproject.toml): it is AWS's code as AWS wrote it.
# ruff: noqa
# mypy: ignore-errors
import json
import sys
from collections import Counter, defaultdict
from itertools import chain, islice

import numpy as np
import pandas as pd
from sklearn.model_selection import StratifiedShuffleSplit

from tests.conformance.notebooks.standins import TreebankWordTokenizer, jsonlines, sent_tokenize

# ---- notebook cell 19: its definitions, verbatim (left out: 1 top-level statement(s) that run the notebook's own steps)
tokenizer = TreebankWordTokenizer()

def tokenize_plot_summary(summary):
    for sent in sent_tokenize(summary):
        for token in tokenizer.tokenize(sent):
            yield token

UNKNOWN = '<unk>'

def build_vocab(data, max_vocab_size=None):
    vocab = Counter()
    total = len(data)
    for i, row in enumerate(data.itertuples()):
        vocab.update(tokenize_plot_summary(row.plot))
        if (i+1)%1000 == 0:
            sys.stdout.write(".")
            sys.stdout.flush()
    final_vocab = {word:i for i, (word, count) in enumerate(vocab.most_common(max_vocab_size))}
    final_vocab[UNKNOWN]=len(final_vocab)+1
    return final_vocab


# ---- notebook cell 22: its definitions, verbatim (left out: 2 top-level statement(s) that run the notebook's own steps)
def split(df, test_size):
    data = df.values
    data_y = df.drop(['title', 'plot', 'plot_lang'], axis=1).values
    #StratifiedShuffleSplit does not work with one hot encoded / multiple labels. Doing the split on basis of arg max labels.
    data_y = np.argmax(data_y, axis=1)
    data_y.shape
    stratified_split = StratifiedShuffleSplit(n_splits=2, test_size=test_size, random_state=42)
    for train_index, test_index in stratified_split.split(data, data_y):
        train, test = df.iloc[train_index], df.iloc[test_index]
    return train, test


# ---- notebook cell 27: its definitions, verbatim (left out: 1 top-level statement(s) that run the notebook's own steps)
def tokenize(df, vocab, filename, negative_frac=1.0, use_stopwords=False):
    # Rename the columns so that they are valid python identifiers
    df = df.rename(lambda x:x.replace("-", "_") ,axis='columns')
    genres = list(df.columns)[2:-1]
    max_seq_length = 0
    total = len(df)
    stop_words = set()
    if use_stopwords:
        stop_words = set(stopwords.words('english'))
    with jsonlines.open(filename, mode='w') as writer:
        for j, row in enumerate(df.itertuples()):
            tokens = [token for token in tokenize_plot_summary(row.plot) if token not in stop_words]
            plot_token_ids = [vocab[token] if token in vocab else vocab[UNKNOWN] for token in tokens]
            for i, genre in enumerate(genres):
                label = getattr(row, genre)
                if label == 1 or np.random.rand() < negative_frac:
                    # All positive examples and fraction of negative examples are picked.
                    writer.write({"in0": plot_token_ids, "in1": [i], "label": label})
            max_seq_length = max(len(plot_token_ids), max_seq_length)
            if (j+1)%1000==0:
                sys.stdout.write(".")
                sys.stdout.flush()
        print("Finished tokenizing data. Max sequence length of the tokenized data: ", max_seq_length)


# ---- notebook cell 49: its definitions, verbatim
def evaluate(filename, predictions, genre_dict, threshold=0.5):
    metrics = {g:{"genre": g, "tp":0, "tn":0, "fp":0, "fn":0} for g in genre_dict.values()}
    with jsonlines.open(filename, "r") as reader, jsonlines.open(predictions, "r") as preds:
        for row, preds in zip(reader, preds):
            prediction = preds["scores"][1] > threshold
            label = row["label"]
            g = genre_dict[row["in1"][0]]
            if prediction == 1:
                if label == prediction:
                    metrics[g]["tp"] +=1
                else:
                    metrics[g]["fp"]+=1
            elif prediction == 0:
                if label == prediction:
                    metrics[g]["tn"]+=1
                else:
                    metrics[g]["fn"]+=1
    summary = pd.DataFrame(list(metrics.values())).set_index('genre')
    summary['accuracy'] = summary.apply (lambda row: (row.tp + row.tn) / (row.tp + row.tn + row.fp + row.fn),axis=1)
    summary['precision'] = summary.apply (lambda row: row.tp / (row.tp + row.fp),axis=1)
    summary['recall'] = summary.apply (lambda row: row.tp / (row.tp + row.fn),axis=1)
    summary['f1'] = summary.apply (lambda row: 2*(row.precision * row.recall) /(row.precision + row.recall),axis=1)
    return summary


# ---- notebook cell 55: its definitions, verbatim
def get_movie_genre_predictions(movie_summary, genre_dict, vocab, predictor, threshold=0.5):
    plot_token_ids = [vocab[token] if token in vocab else vocab[UNKNOWN] for token in tokenize_plot_summary(movie_summary)]
    batch = [{"in0": plot_token_ids, "in1": [genre_id]} for genre_id in range(len(genre_dict))]
    request = {"instances": batch}
    response = predictor.predict(data=json.dumps(request))
    scores = [score["scores"] for score in json.loads(response)["predictions"]]
    predictions = [genre_dict[i] for i, score in enumerate(scores) if score[1] > threshold]
    return predictions
