"""A curated thesaurus of ML/AI/CS research vocabulary: spellings of one concept that papers use
interchangeably ("UAV" / "drone", "healthcare" / "clinical", "LLM" / "large language model").

Hand-written on purpose: no offline library of this field's terminology exists, and WordNet
neither knows it ("transformer" is an electrical device there) nor ships without a download.
A curator maintains it like the topic list (default_topics.py): one group a line, members
separated by "|"; any member stands for any other. A member marked "~" is ambiguous in papers
("CV" is also a coefficient of variation, "CT" a cycle threshold): typed in an interest it is
understood, but a paper saying it is not taken to mean the group. Members are compared after
stemming without stopwords, so "unmanned aerial vehicles" is "unmanned aerial vehicle"; a
member belongs to one group only. Synonyms and near-synonyms only: a kind of a thing
("quadrotor" for "drone" is the exception people expect) would widen an interest past what
the person asked for.

Used on the query side only (interests and topic queries; see lexical.LexicalIndex), never to
rewrite the papers.
"""

from dataclasses import dataclass
from functools import lru_cache

from .text import STOPWORDS, tokens, words

GROUPS = """
# --- language models and NLP
llm | large language model
lm | language model
slm | small language model
vlm | vision language model
mllm | multimodal large language model | multimodal llm | multi modal large language model
lmm | large multimodal model
plm ~ | pretrained language model | pre trained language model
nlp | natural language processing
nlu | natural language understanding
nlg | natural language generation | text generation
rag | retrieval augmented generation | retrieval enhanced generation
cot | chain of thought
icl | in context learning
instruction tuning | instruction finetuning | instruction fine tuning
sft | supervised fine tuning | supervised finetuning
fine tuning | finetuning
prompt engineering | prompt design
tool use | tool learning | tool calling | function calling
llm agent | language agent | llm based agent
hallucination | confabulation
fact checking | fact verification
misinformation | disinformation | fake news
knowledge editing | model editing
qa | question answering
vqa | visual question answering
mrc | machine reading comprehension | reading comprehension
ner | named entity recognition
srl | semantic role labeling | semantic role labelling
wsd | word sense disambiguation
pos tagging | part of speech tagging
nli | natural language inference | textual entailment | rte
gec | grammatical error correction
mt ~ | machine translation
nmt | neural machine translation
sentiment analysis | opinion mining | sentiment classification
summarization | summarisation
text summarization | text summarisation | document summarization | document summarisation
text to sql | text2sql | nl2sql
dialogue | dialog
dialogue system | dialog system | conversational agent | conversational ai | chatbot
multilingual | multi lingual | cross lingual | crosslingual
low resource language | under resourced language | low resource languages
word embedding | word vector
sentence embedding | sentence representation | text embedding
math reasoning | mathematical reasoning
commonsense reasoning | common sense reasoning
test time compute | inference time compute | test time scaling | inference time scaling
long context | long context modeling | long context modelling
state space model | ssm
mixture of experts | moe | mixture of expert
knowledge distillation | kd | model distillation

llm as a judge | llm judge
homomorphic encryption | fully homomorphic encryption | fhe
intrusion detection | intrusion detection system

paraphrase generation | paraphrasing
sts | semantic textual similarity
keyphrase extraction | keyword extraction
lda ~ | latent dirichlet allocation
odqa | open domain question answering
ser ~ | speech emotion recognition
emotion recognition | affect recognition
hate speech detection | hateful content detection
toxicity detection | toxic content detection
machine generated text detection | ai generated text detection | llm generated text detection
code completion | code autocompletion
apr ~ | automated program repair | automatic program repair | program repair
vulnerability detection | vulnerability discovery
test generation | test case generation | unit test generation
autoformalization | auto formalization
theorem proving | automated theorem proving | formal theorem proving

pretraining | pre training
lrm ~ | large reasoning model
long cot | long chain of thought
tot | tree of thoughts | tree of thought
pot ~ | program of thoughts | program of thought
tom ~ | theory of mind
bon | best of n | best of n sampling
context window | context length
positional encoding | position encoding | positional embedding | position embedding
rotary position embedding | rotary embedding
mha ~ | multi head attention | multihead attention
mqa ~ | multi query attention
gqa ~ | grouped query attention
mla ~ | multi head latent attention
bpe | byte pair encoding
subword | sub word
seq2seq | sequence to sequence
autoregressive | auto regressive
nar ~ | non autoregressive | nonautoregressive | non auto regressive
dllm | diffusion language model | diffusion llm
ntp ~ | next token prediction
mlm ~ | masked language modeling | masked language model
emergent abilities | emergent capabilities
benchmark contamination | data contamination | test set contamination
memorization | memorisation
catastrophic forgetting | catastrophic interference
model merging | weight merging
multi turn | multiturn
multi hop question answering | multihop question answering | multi hop qa | multihop qa
table question answering | table qa | tableqa
kbqa | knowledge base question answering | kgqa | knowledge graph question answering
document understanding | document ai
information extraction | ie ~
coreference resolution | coreference | coref
entity linking | entity disambiguation | named entity disambiguation
stance detection | stance classification
role playing | roleplay | role playing agent
controllable text generation | controlled text generation | ctg ~
query rewriting | query reformulation
reranking | re ranking | re ranker
bi encoder | dual encoder | two tower model
semantic search | semantic retrieval
hybrid search | hybrid retrieval
graphrag | graph rag | graph based rag
prompt compression | context compression
prompt tuning | soft prompt tuning | soft prompting
perplexity | ppl
wer | word error rate
speech translation | speech to text translation
code llm | code large language model | code language model
code search | code retrieval
code summarization | code summarisation | code comment generation
coding agent | code agent | software engineering agent | swe agent
repository level code generation | repo level code generation
self correction | self refinement
web agent | browser agent | web navigation agent
mcp | model context protocol
aied | ai in education | ai for education
icd coding | clinical coding | medical coding | automated icd coding
code switching | code mixing
story generation | storytelling
task oriented dialogue | task oriented dialog | tod ~
absa | aspect based sentiment analysis
open information extraction | openie | open ie
intent detection | intent classification | intent recognition
bionlp | biomedical nlp | biomedical natural language processing | biomedical text mining
fim ~ | fill in the middle
mtp ~ | multi token prediction
open source llm | open weight llm | open llm | open source large language model | open weight large language model

# --- alignment, safety, security, privacy
rlhf | reinforcement learning from human feedback
rlaif | reinforcement learning from ai feedback
rlvr | reinforcement learning with verifiable rewards
dpo | direct preference optimization | direct preference optimisation
preference optimization | preference optimisation | preference alignment
reward hacking | reward gaming | specification gaming
jailbreak | jailbreak attack
prompt injection | prompt injection attack
adversarial example | adversarial attack | adversarial perturbation
backdoor | trojan
backdoor attack | trojan attack
data poisoning | poisoning attack
membership inference | membership inference attack
model extraction | model stealing
differential privacy | differentially private | dp ~
privacy preserving machine learning | ppml
secure multi party computation | secure multiparty computation | smpc
malware | malicious software
xai | explainable ai | explainable artificial intelligence
mechanistic interpretability | mech interp
sae | sparse autoencoder | sparse auto encoder
machine unlearning | unlearning
watermarking | watermark

adversarial training | adversarially robust training
certified robustness | provable robustness | certified defense
model inversion | model inversion attack
gradient inversion | gradient leakage
side channel attack | side channel
fuzzing | fuzz testing

prm | process reward model | process supervised reward model | process verifier
orm ~ | outcome reward model | outcome supervised reward model | outcome verifier
rm ~ | reward model | reward modeling
genrm | generative reward model | generative verifier
bradley terry model | bradley terry | bt model
over refusal | overrefusal | exaggerated safety | false refusal
reward design | reward engineering
kl divergence | kullback leibler divergence | relative entropy
cybersecurity | cyber security
ctf | capture the flag
universal adversarial perturbation | uap
vfl | vertical federated learning
dp sgd | differentially private sgd | differentially private stochastic gradient descent
ldp | local differential privacy
pii | personally identifiable information
training data extraction | data extraction attack
attribute inference | attribute inference attack
log anomaly detection | log based anomaly detection
defense | defence
de identification | deidentification
shap | shapley additive explanations
cam ~ | class activation map | class activation mapping
grad cam | gradcam
cbm ~ | concept bottleneck model
probing classifier | diagnostic classifier
activation steering | representation steering | activation engineering | steering vector
data attribution | training data attribution
algorithmic fairness | ml fairness | fairness in machine learning | fair machine learning
debiasing | bias mitigation
social bias | societal bias
demographic parity | statistical parity
equalized odds | equalised odds
spurious correlation | shortcut learning
ai ethics | ethics of ai | ethical ai
ai generated image detection | synthetic image detection | fake image detection
penetration testing | pentesting | pen testing
data anonymization | data anonymisation

# --- learning paradigms and methods
ai | artificial intelligence
agi | artificial general intelligence
ml ~ | machine learning
dl ~ | deep learning
dnn | deep neural network
nn ~ | neural network | neural net
cnn | convolutional neural network | convnet | convolutional network
rnn | recurrent neural network
lstm | long short term memory
mlp | multilayer perceptron | multi layer perceptron
snn | spiking neural network
gan | generative adversarial network
vae | variational autoencoder | variational auto encoder
ebm | energy based model
nas | neural architecture search
automl | automated machine learning
hpo | hyperparameter optimization | hyperparameter tuning | hyperparameter optimisation
peft | parameter efficient fine tuning | parameter efficient finetuning
lora | low rank adaptation
ssl ~ | self supervised learning | self supervision
semi supervised learning | semi supervision
few shot learning | low shot learning
meta learning | learning to learn
continual learning | lifelong learning | incremental learning
domain generalization | domain generalisation | dg ~
uda | unsupervised domain adaptation
contrastive learning | contrastive representation learning
representation learning | feature learning
mtl | multi task learning
fl | federated learning
ood | out of distribution
ood detection | out of distribution detection
anomaly detection | outlier detection | novelty detection
noisy labels | label noise
class imbalance | imbalanced data | imbalanced classification
dataset distillation | dataset condensation
synthetic data | data synthesis | synthetic dataset
data curation | data selection | data filtering
data labeling | data annotation | data labelling
data imputation | missing data imputation | missing value imputation
uncertainty quantification | uq | uncertainty estimation
conformal prediction | conformal inference
bayesian neural network | bayesian deep learning
causal inference | causal effect estimation | treatment effect estimation
causal discovery | causal structure learning
optimal transport | ot ~
gp ~ | gaussian process
bo ~ | bayesian optimization | bayesian optimisation
mcmc | markov chain monte carlo
vi ~ | variational inference
em ~ | expectation maximization
sgd | stochastic gradient descent
optimization | optimisation
quantization | quantisation
pruning | sparsification
model compression | network compression | neural network compression
svm | support vector machine
pca | principal component analysis
knn | k nearest neighbor | k nearest neighbour
crf | conditional random field
hmm | hidden markov model
ntk | neural tangent kernel
pac learning | probably approximately correct learning
vc dimension | vapnik chervonenkis dimension
game theory | game theoretic
information theory | information theoretic
kernel methods | kernel machines
behavior | behaviour

distribution shift | dataset shift | data drift
feature selection | variable selection
dimensionality reduction | dimension reduction
clustering | cluster analysis
data cleaning | data cleansing
entity resolution | record linkage | entity matching
convex optimization | convex programming | convex optimisation
zeroth order optimization | derivative free optimization | gradient free optimization | zeroth order optimisation
evolutionary algorithm | evolutionary computation
multi objective optimization | multiobjective optimization | multi objective optimisation | pareto optimization
milp | mixed integer linear programming | mixed integer programming
minimax optimization | min max optimization | saddle point problem
second order optimization | second order method
gd ~ | gradient descent

tta ~ | test time adaptation
ttt ~ | test time training
sfda | source free domain adaptation
zsl | zero shot learning
mixup | mix up
curriculum learning | curriculum training
al ~ | active learning
pu learning | positive unlabeled learning | positive unlabelled learning
weak supervision | weakly supervised learning
multimodal | multi modal
multi view | multiview
multi label classification | multilabel classification
multi agent | multiagent
iid | independent and identically distributed
hyperparameter | hyper parameter
backpropagation | back propagation | backprop
autoencoder | auto encoder
batch normalization | batch normalisation | batchnorm | batch norm
layer normalization | layer normalisation | layernorm | layer norm
rmsnorm | rms norm | root mean square normalization
ptq | post training quantization | post training quantisation
qat | quantization aware training | quantisation aware training
qlora | quantized lora | quantized low rank adaptation
lottery ticket hypothesis | lottery ticket | lth
low rank approximation | low rank factorization | low rank decomposition
overparameterization | over parameterization | overparametrization | over parametrization
implicit bias | implicit regularization | implicit regularisation
ood generalization | ood generalisation | out of distribution generalization | out of distribution generalisation
compositional generalization | compositional generalisation
length generalization | length generalisation
sharpness aware minimization | sharpness aware minimisation
loss landscape | loss surface
flat minima | flat minimum
edge of stability | eos ~
lr ~ | learning rate
learning rate schedule | learning rate scheduling | lr schedule
nonconvex | non convex
convergence rate | rate of convergence
generalization bound | generalisation bound | generalization error bound
rkhs | reproducing kernel hilbert space
gmm | gaussian mixture model
kde | kernel density estimation
mle | maximum likelihood estimation | maximum likelihood
elbo | evidence lower bound
sde ~ | stochastic differential equation
neural ode | neural ordinary differential equation
cfg ~ | classifier free guidance
cfm | conditional flow matching
kan ~ | kolmogorov arnold network
hypernetwork | hyper network
inr | implicit neural representation | neural field
tda ~ | topological data analysis
svd | singular value decomposition
tsne | t sne | t distributed stochastic neighbor embedding
gbdt | gradient boosted decision tree | gradient boosting decision tree
ensemble learning | ensemble method | model ensembling
gaussian process regression | gpr ~ | kriging
surrogate model | metamodel
sbi | simulation based inference | likelihood free inference
amortized inference | amortised inference
hmc | hamiltonian monte carlo
smc ~ | sequential monte carlo | particle filter | particle filtering
cate | conditional average treatment effect | heterogeneous treatment effect | hte
ope | off policy evaluation
nearest neighbor | nearest neighbour
combinatorial optimization | combinatorial optimisation
mil ~ | multiple instance learning | multi instance learning
dataset | data set
deduplication | data deduplication
inter annotator agreement | inter rater agreement | inter rater reliability
math | mathematics | maths
symbolic regression | equation discovery
personalized federated learning | personalised federated learning | pfl
erm | empirical risk minimization | empirical risk minimisation
black box optimization | blackbox optimization | black box optimisation
admm | alternating direction method of multipliers
lp ~ | linear programming
sdp ~ | semidefinite programming | semi definite programming
bilevel optimization | bi level optimization | bilevel optimisation
dro | distributionally robust optimization | distributionally robust optimisation
l2o | learning to optimize | learned optimizer
pac bayes | pac bayesian
ib ~ | information bottleneck
mi ~ | mutual information
wasserstein distance | earth mover s distance | emd ~
mmd | maximum mean discrepancy
k means | kmeans
nonparametric | non parametric
time series | timeseries
coreset | core set
data mixture | data mixing
data scarcity | data scarce | scarce data
bayesian optimal experimental design | bayesian experimental design

# --- reinforcement learning and robotics
rl | reinforcement learning
drl | deep reinforcement learning | deep rl
marl | multi agent reinforcement learning | multi agent rl
irl | inverse reinforcement learning
offline rl | offline reinforcement learning | batch reinforcement learning | batch rl
model based rl | model based reinforcement learning
mdp | markov decision process
pomdp | partially observable markov decision process
ppo | proximal policy optimization | proximal policy optimisation
grpo | group relative policy optimization | group relative policy optimisation
dqn | deep q network
bandit | multi armed bandit | mab
imitation learning | learning from demonstration | lfd | apprenticeship learning
behavior cloning | behavioral cloning | behaviour cloning | behavioural cloning
sim to real | sim2real | simulation to reality
vla | vision language action | vision language action model
mpc ~ | model predictive control
motion planning | path planning | trajectory planning
embodied ai | embodied intelligence | embodied agent
vln | vision language navigation | vision and language navigation
slam | simultaneous localization and mapping | simultaneous localisation and mapping
drone | uav | unmanned aerial vehicle | unmanned aerial system | quadrotor | quadcopter | multirotor
autonomous driving | self driving | autonomous vehicle | self driving car | driverless car
adas | advanced driver assistance system
bev | bird s eye view | bird eye view
lidar | light detection and ranging
surgical robotics | robotic surgery | robot assisted surgery
teleoperation | tele operation | remote operation

hrl | hierarchical reinforcement learning | hierarchical rl
safe rl | safe reinforcement learning | constrained reinforcement learning | constrained rl
goal conditioned rl | goal conditioned reinforcement learning
multi agent system | multiagent system
grasp detection | grasp pose detection
in hand manipulation | dexterous manipulation
trajectory prediction | trajectory forecasting | motion forecasting

mcts | monte carlo tree search
trpo | trust region policy optimization | trust region policy optimisation
a2c | advantage actor critic
sac ~ | soft actor critic
ddpg | deep deterministic policy gradient
td learning | temporal difference learning
cql | conservative q learning
iql ~ | implicit q learning
gae ~ | generalized advantage estimation | generalised advantage estimation
rloo | reinforce leave one out
intrinsic motivation | intrinsic reward
contextual bandit | contextual multi armed bandit
ucb ~ | upper confidence bound
cfr | counterfactual regret minimization | counterfactual regret minimisation
self play | selfplay
pbt | population based training
domain randomization | domain randomisation
quadruped | quadrupedal
objectnav | object navigation | object goal navigation
tamp | task and motion planning
wbc ~ | whole body control
dof ~ | degrees of freedom | degree of freedom
vpr | visual place recognition
hd map | high definition map
end to end driving | end to end autonomous driving
traffic signal control | traffic light control
hri | human robot interaction
multi robot | multirobot

# --- vision, graphics, 3D
cv ~ | computer vision
vit | vision transformer
3d | three dimensional
2d | two dimensional
nerf | neural radiance field
3dgs | 3d gaussian splatting | gaussian splatting
nvs | novel view synthesis | view synthesis
sfm ~ | structure from motion
mvs | multi view stereo
depth estimation | depth prediction
super resolution | superresolution | sr ~
image generation | image synthesis
video generation | video synthesis
3d generation | 3d content generation | 3d synthesis
t2i | text to image
t2v | text to video
i2v | image to video
ldm | latent diffusion model
ddpm | denoising diffusion probabilistic model
diffusion model | diffusion probabilistic model | denoising diffusion model | score based generative model
normalizing flow | normalising flow | flow based model
image inpainting | image completion
image to image translation | image translation
style transfer | neural style transfer
talking head | talking face
ocr | optical character recognition
image captioning | caption generation
action recognition | activity recognition | har
person re identification | person reid | person re id
face recognition | facial recognition
deepfake | deep fake | face forgery
deepfake detection | face forgery detection
mocap | motion capture

image classification | image recognition
object tracking | visual tracking
mot ~ | multi object tracking | multiple object tracking
visual grounding | phrase grounding | referring expression comprehension
ovd | open vocabulary detection | open vocabulary object detection
cbir | content based image retrieval
videoqa | video question answering
sgg | scene graph generation
vlp | vision language pretraining | vision language pre training
iqa | image quality assessment
low light image enhancement | low light enhancement
remote sensing | earth observation
hyperspectral imaging | hyperspectral imagery
motion generation | motion synthesis | human motion generation | human motion synthesis
egocentric video | first person video
event camera | dynamic vision sensor | neuromorphic camera

referring image segmentation | referring expression segmentation | referring segmentation
vos | video object segmentation
sod ~ | salient object detection
cod ~ | camouflaged object detection
hoi ~ | human object interaction
hpe ~ | human pose estimation
hmr | human mesh recovery
text guided image editing | text driven image editing | text based image editing
video compression | video coding
vqvae | vq vae | vector quantized variational autoencoder
vq ~ | vector quantization | vector quantisation
mae ~ | masked autoencoder | masked auto encoder
mim ~ | masked image modeling
clip ~ | contrastive language image pretraining | contrastive language image pre training
lvlm | large vision language model
vision encoder | visual encoder | image encoder
video understanding | video comprehension
video llm | videollm | video large language model
tal ~ | tad ~ | temporal action localization | temporal action detection | temporal action localisation
moment retrieval | video moment retrieval | temporal grounding | video temporal grounding
text video retrieval | text to video retrieval | video text retrieval
image text retrieval | image text matching
fine grained visual classification | fine grained image classification | fgvc
long tailed recognition | long tailed classification | long tailed learning
osr ~ | open set recognition
cil ~ | class incremental learning
stereo matching | disparity estimation
monocular depth estimation | monocular depth prediction | mde ~
sdf ~ | signed distance function | signed distance field
sds ~ | score distillation sampling
4dgs | 4d gaussian splatting
single view 3d reconstruction | single image 3d reconstruction
document layout analysis | layout analysis
chart understanding | chart comprehension
satellite imagery | satellite image
aerial imagery | aerial image
precision agriculture | smart farming | digital agriculture
dit ~ | diffusion transformer
generative ai | genai | gen ai | generative artificial intelligence | aigc | ai generated content
resnet | residual network
unet | u net
fid ~ | frechet inception distance
auroc | area under the roc curve | area under the receiver operating characteristic curve
ece ~ | expected calibration error
ndcg | normalized discounted cumulative gain
object detector | object detection
cir ~ | composed image retrieval
image forgery detection | image manipulation detection | image tampering detection
video prediction | future frame prediction | video forecasting
video frame interpolation | frame interpolation
vsr ~ | video super resolution
lcm ~ | latent consistency model
gflownet | generative flow network
artifact | artefact

# --- speech and audio
asr | automatic speech recognition | speech recognition | speech to text
tts | text to speech | speech synthesis
speech enhancement | speech denoising | noise suppression
speaker verification | speaker recognition
speaker diarization | diarization | diarisation
vc ~ | voice conversion
sed ~ | sound event detection
kws | keyword spotting
slu | spoken language understanding
s2st | speech to speech translation
audio generation | audio synthesis
music generation | music synthesis
audio language model | audio llm | large audio language model | lalm

text to music | text2music
svs ~ | singing voice synthesis
lip reading | lipreading | visual speech recognition
audio captioning | automated audio captioning

vad ~ | voice activity detection
speech language model | spoken language model | speech lm | speech llm
audio visual | audiovisual
audio classification | audio tagging
audio deepfake detection | synthetic speech detection | speech anti spoofing | audio anti spoofing
t2a | text to audio
speech separation | speaker separation

# --- graphs, retrieval, recommendation
gnn | graph neural network | graph neural net
gcn | graph convolutional network
gat ~ | graph attention network
mpnn | message passing neural network
kg | knowledge graph
kge | knowledge graph embedding
kb ~ | knowledge base
graph representation learning | graph embedding | network embedding
community detection | graph clustering
temporal graph | dynamic graph
heterogeneous graph | heterogeneous information network | hin
ir ~ | information retrieval
dense retrieval | neural retrieval | embedding based retrieval
ltr | learning to rank
recommender system | recommendation system | recsys | recommender
collaborative filtering | cf ~
ctr | click through rate
vector database | vector store | vector db
approximate nearest neighbor search | approximate nearest neighbour search | ann search

graph generation | graph generative model
node embedding | node representation learning
gcl | graph contrastive learning
graph mining | graph data mining
sequential recommendation | next item recommendation
session based recommendation | session recommendation
crs | conversational recommendation | conversational recommender system
matrix factorization | matrix factorisation
computational advertising | online advertising

gin ~ | graph isomorphism network
graph autoencoder | graph auto encoder
oversmoothing | over smoothing
oversquashing | over squashing
hypergraph neural network | hgnn ~
knowledge graph reasoning | kg reasoning
pq ~ | product quantization
hnsw | hierarchical navigable small world
subgraph | sub graph
ecommerce | e commerce
llm4rec | llm based recommendation | llm for recommendation
cross domain recommendation | cdr ~
multi behavior recommendation | multi behaviour recommendation
hypergraph | hyper graph

# --- systems, hardware, efficiency
gpu | graphics processing unit
tpu | tensor processing unit
cpu | central processing unit
npu | neural processing unit
fpga | field programmable gate array
asic | application specific integrated circuit
hpc | high performance computing
distributed training | parallel training
model serving | inference serving | llm serving
efficient inference | inference efficiency | inference acceleration | fast inference
efficient training | training efficiency
speculative decoding | speculative sampling
kv | key value
kv cache | key value cache | kv caching
flash attention | flashattention
ml compiler | deep learning compiler | tensor compiler
in memory computing | processing in memory | compute in memory | pim
hardware accelerator | ai accelerator
edge ai | on device ai | edge intelligence
tinyml | tiny machine learning
iot | internet of things
sdn | software defined networking
os ~ | operating system
dbms | database management system
green ai | sustainable ai
quantum machine learning | qml
quantum computing | quantum computation

data parallelism | data parallel training
pipeline parallelism | pipeline parallel training
activation checkpointing | gradient checkpointing | activation recomputation
mixed precision training | mixed precision
serverless | serverless computing | function as a service | faas
continuous batching | iteration level batching | inflight batching
paged attention | pagedattention
prefix caching | prompt caching
eda | electronic design automation
hls | high level synthesis
rtl | register transfer level
chip design | integrated circuit design | ic design
neuromorphic computing | neuromorphic hardware | neuromorphic chip
photonic computing | optical computing

model parallelism | model parallel training
tensor parallelism | tensor model parallelism
fsdp | fully sharded data parallel
pd disaggregation | prefill decode disaggregation | disaggregated serving
token merging | tome ~
kv cache compression | kv compression
autotuning | auto tuning
vqc | variational quantum circuit | parameterized quantum circuit | parametrized quantum circuit
qnn ~ | quantum neural network
real time | realtime
n m sparsity | semi structured sparsity
all reduce | allreduce
bug localization | fault localization | bug localisation | fault localisation

# --- medicine and biology
healthcare | health care | medical | clinical | medicine
ehr | electronic health record | emr | electronic medical record
medical imaging | medical image analysis | medical image
ct ~ | computed tomography
mri | magnetic resonance imaging
fmri | functional magnetic resonance imaging | functional mri
pet ~ | positron emission tomography
x ray | radiograph | radiography
cxr | chest x ray | chest radiograph
ultrasound | sonography
eeg | electroencephalography | electroencephalogram
ecg | electrocardiogram | electrocardiography | ekg
meg ~ | magnetoencephalography
bci | brain computer interface | brain machine interface
neural decoding | brain decoding
neuroscience | brain science
computational pathology | digital pathology
wsi | whole slide image
drug discovery | drug design
dti | drug target interaction
protein structure prediction | protein folding
protein design | protein engineering
molecule generation | molecular generation | molecular design
single cell rna sequencing | scrna seq | single cell transcriptomics
bioinformatics | computational biology

radiology report generation | medical report generation
antibody design | antibody engineering
molecular property prediction | molecule property prediction
retrosynthesis | retrosynthetic planning | retrosynthesis prediction
molecular docking | protein ligand docking
cryo em | cryo electron microscopy | cryoem
mhealth | mobile health | digital health
sleep staging | sleep stage classification

icu | intensive care unit
emergency department | emergency room
oct ~ | optical coherence tomography
fundus image | fundus photograph | retinal image | fundus photography
tumor | tumour
pediatric | paediatric
alzheimer s disease | alzheimer disease
asd ~ | autism spectrum disorder
mental illness | mental disorder | psychiatric disorder
covid 19 | covid19 | covid
spatial transcriptomics | spatially resolved transcriptomics
ddi | drug drug interaction
dta | drug target affinity | binding affinity prediction
ppi ~ | protein protein interaction
mammography | mammogram
echocardiography | echocardiogram | cardiac ultrasound
ppg | photoplethysmography | photoplethysmogram
wearable sensor | wearable device
survival analysis | time to event analysis | time to event modeling
neuroimaging | brain imaging
computer aided diagnosis | computer assisted diagnosis | cadx
clinical decision support | cdss | clinical decision support system
drug repurposing | drug repositioning
inverse folding | fixed backbone design | fixed backbone sequence design
sbdd | structure based drug design

# --- HCI, data, science
hci | human computer interaction
ux | user experience
ui | user interface
gui | graphical user interface
gui agent | computer use agent
augmented reality | ar ~
vr | virtual reality
xr | extended reality
human ai collaboration | human ai interaction | human ai teaming
eye tracking | gaze tracking
crowdsourcing | crowd sourcing
data visualization | data visualisation
time series forecasting | time series prediction
pde | partial differential equation
ode | ordinary differential equation
pinn | physics informed neural network
ai for science | ai4science | scientific machine learning | sciml
weather forecasting | weather prediction | numerical weather prediction | nwp
participatory design | co design | codesign
haptics | haptic feedback
hitl | human in the loop
cscw | computer supported cooperative work
voice assistant | voice user interface | vui
tsc ~ | time series classification
spatiotemporal forecasting | spatio temporal forecasting
traffic forecasting | traffic prediction
md ~ | molecular dynamics
dft ~ | density functional theory
mlip | machine learning interatomic potential | machine learned interatomic potential
materials discovery | materials design
neural operator | operator learning

mr ~ | mixed reality
blv | blind and low vision | blind or low vision | visually impaired
cognitive load | cognitive workload | mental workload
older adult | elderly | older people
dhh | deaf and hard of hearing
self driving lab | self driving laboratory | autonomous laboratory | autonomous lab
"""


@dataclass(frozen=True)
class Group:
    """One concept: every member's stemmed tokens, and those a paper may say to mean it."""

    members: tuple[tuple[str, ...], ...]
    searchable: tuple[tuple[str, ...], ...]
    spelled: dict[tuple[str, ...], str]  # a searchable member as written


def _parse(text: str) -> tuple[list[Group], dict[tuple[str, ...], int]]:
    groups: list[Group] = []
    lookup: dict[tuple[str, ...], int] = {}
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        members, searchable, spelled = [], [], {}
        for raw in line.split("|"):
            raw = raw.strip()
            ambiguous = raw.endswith("~")
            key = tuple(tokens(raw.rstrip("~")))
            if not key or key in members:
                continue  # two spellings that stem alike ("medical imaging" / "medical image")
            if key in lookup:
                raise ValueError(f"thesaurus: {raw!r} is in two groups")
            members.append(key)
            if not ambiguous:
                searchable.append(key)
                spelled[key] = raw
        if len(members) > 1:
            for key in members:
                lookup[key] = len(groups)
            groups.append(Group(tuple(members), tuple(searchable), spelled))
    return groups, lookup


@lru_cache(maxsize=1)
def thesaurus() -> tuple[list[Group], dict[tuple[str, ...], int], int]:
    groups, lookup = _parse(GROUPS)
    return groups, lookup, max(map(len, lookup))


@dataclass(frozen=True)
class Concept:
    """A stretch of a phrase's tokens that the thesaurus knows: tokens[start:end], and the other
    spellings a paper may use for it."""

    start: int
    end: int
    alternatives: tuple[tuple[str, ...], ...]
    spelled: tuple[str, ...] = ()  # the alternatives as written


def concepts(toks: list[str]) -> list[Concept]:
    """The thesaurus concepts in a stemmed token list, longest match first, left to right.

    "multimodal llm evaluation" is one concept (multimodal llm) and a plain word; "clinical nlp"
    two concepts.
    """
    groups, lookup, longest = thesaurus()
    out, i = [], 0
    while i < len(toks):
        for length in range(min(longest, len(toks) - i), 0, -1):
            key = tuple(toks[i : i + length])
            if key in lookup:
                alternatives = tuple(m for m in groups[lookup[key]].searchable if m != key)
                if alternatives:
                    spelled = tuple(groups[lookup[key]].spelled[m] for m in alternatives)
                    out.append(Concept(i, i + length, alternatives, spelled))
                i += length
                break
        else:
            i += 1
    return out


def respellings(text: str) -> list[str]:
    """The text with each concept in it written each other way, one at a time
    ("drones over fields" -> "uav over fields", "unmanned aerial vehicle over fields", ...)."""
    ws = words(text)
    content = [i for i, w in enumerate(ws) if w not in STOPWORDS]  # token index -> word index
    out = []
    for concept in concepts(tokens(text)):
        start, end = content[concept.start], content[concept.end - 1] + 1
        out += [" ".join([*ws[:start], alternative, *ws[end:]]) for alternative in concept.spelled]
    return out
