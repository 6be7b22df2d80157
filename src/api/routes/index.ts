// Feature route modules register themselves with the API here (import for side effects).
import './verify';
import './locker';
import './doctor';
import './promotion';
import './retention';
import './replay';
import './scan';
import './anchoring';
import './backup';
