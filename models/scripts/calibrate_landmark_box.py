#!/usr/bin/env python3
"""Measures where dlib's HOG face boxes (what dlib's 5-point landmark cascade was trained
on) sit relative to BlazeFace's boxes, on LFW View 1 DevTrain images only; the medians
are the constants of `landmark_box` in crates/huella-face/src/pipeline.rs.

    ls /path/to/lfw/*/*.jpg > /tmp/all.txt   # or the View 1 image list
    cargo run --release -p huella-face --example lfw_dump -- models < /tmp/all.txt > v1_front.jsonl
    python3 models/scripts/calibrate_landmark_box.py   # LFW at /work/shared/datasets/lfw

Needs PyPI dlib-bin (HOG detector). Run 2026-11-29: 236 images, median offsets
(left, top, right, bottom) = (-0.0263, -0.0502, -0.0464, -0.0672) of box width/height.
"""
import dlib, json, numpy as np
det = dlib.get_frontal_face_detector()
train=set()
root='/work/shared/datasets/lfw/'
for l in open(root+'protocol/pairsDevTrain.txt').read().split('\n')[1:]:
    p=l.split()
    if len(p)==3: train.add(f'{root}{p[0]}/{p[0]}_{int(p[1]):04d}.jpg')
    elif len(p)==4: train.add(f'{root}{p[0]}/{p[0]}_{int(p[1]):04d}.jpg')
recs=[json.loads(l) for l in open('v1_front.jsonl')]
recs=[r for r in recs if r['path'] in train][::8][:400]
rel=[]
for r in recs:
    img=dlib.load_rgb_image(r['path']); d=det(img,1)
    if not d: continue
    d=max(d,key=lambda x:x.area())
    l,t,rr,b=r['box']; w=rr-l; h=b-t
    rel.append([(d.left()-l)/w,(d.top()-t)/h,(d.right()-rr)/w,(d.bottom()-b)/h])
rel=np.array(rel); print(len(rel), 'median', np.median(rel,0).round(4), 'mean', rel.mean(0).round(4))
